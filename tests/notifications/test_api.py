"""The routes: POST /notifications/send for services and admins, and the admins' reads."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.conftest import Shop
from tests.notifications.support import NOTIFICATIONS, PHONE, SEND, order_payload, service_auth, stored
from tests.users.support import assert_error, fields

READ_FIELDS = {
    "notificationId",
    "userId",
    "recipient",
    "type",
    "channel",
    "status",
    "payload",
    "attempts",
    "nextAttemptAt",
    "lastError",
    "sentAt",
    "createdAt",
    "updatedAt",
}


def _shipped(user_id: str) -> dict[str, Any]:
    return {
        "userId": user_id,
        "type": "ORDER_SHIPPED",
        "payload": order_payload(user_id, status="SHIPPED", trackingNumber="DTDC123456789IN"),
    }


async def _nothing_sent(shop: Shop) -> None:
    assert [r["type"] for r in await stored(shop)] == ["WELCOME"] * len(await stored(shop))
    assert [str(m["Subject"]) for m in shop.mails() if "Welcome" not in str(m["Subject"])] == []


class TestSendAuth:
    async def test_without_a_token_is_401(self, shop: Shop) -> None:
        user_id = await shop.register(phone=PHONE)

        response = await shop.client.post(SEND, json=_shipped(user_id))

        assert_error(response, 401, "UNAUTHORIZED")
        assert await stored(shop) == []

    async def test_a_user_is_403(self, shop: Shop) -> None:
        user_id, auth = await shop.user(phone=PHONE)

        response = await shop.client.post(SEND, json=_shipped(user_id), headers=auth)

        assert_error(response, 403, "FORBIDDEN")
        assert await stored(shop) == []

    @pytest.mark.parametrize("caller", ["ADMIN", "SERVICE"])
    async def test_an_admin_or_a_service_is_accepted(self, shop: Shop, caller: str) -> None:
        user_id = await shop.register(phone=PHONE)
        auth = (await shop.admin())[1] if caller == "ADMIN" else service_auth(shop)

        response = await shop.client.post(SEND, json=_shipped(user_id), headers=auth)

        assert response.status_code == 202, response.text
        assert [(n["channel"], n["recipient"]) for n in response.json()["notifications"]] == [
            ("EMAIL", "asha@example.com"),
            ("SMS", PHONE),
        ]


class TestSend:
    async def test_stores_one_per_channel_and_sends_them_right_after_the_answer(self, shop: Shop) -> None:
        user_id = await shop.register(phone=PHONE, fullName="Asha Rao")
        now = shop.clock.now().isoformat().replace("+00:00", "Z")

        with capture_logs() as logs:
            response = await shop.client.post(SEND, json=_shipped(user_id), headers=service_auth(shop))

        assert response.status_code == 202, response.text
        answered = response.json()["notifications"]
        assert [set(n) for n in answered] == [READ_FIELDS, READ_FIELDS]
        email, sms = answered
        assert {k: email[k] for k in ("userId", "recipient", "type", "channel", "status", "attempts")} == {
            "userId": user_id,
            "recipient": "asha@example.com",
            "type": "ORDER_SHIPPED",
            "channel": "EMAIL",
            "status": "PENDING",
            "attempts": 0,
        }
        assert email["notificationId"].startswith("ntf_")
        assert (email["nextAttemptAt"], email["createdAt"], email["sentAt"]) == (now, now, None)
        assert email["payload"]["fullName"] == "Asha Rao"
        assert email["payload"]["trackingNumber"] == "DTDC123456789IN"
        [mail] = [m for m in shop.mails() if "shipped" in str(m["Subject"])]
        assert str(mail["Subject"]) == "Your Tienda order ord_20261125_0042 has shipped"
        assert str(mail["To"]) == "asha@example.com"
        text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert "Tracking number: DTDC123456789IN" in text
        assert "Hello Asha Rao," in text
        [logged] = [entry for entry in logs if entry["event"] == "sms_sent"]
        assert logged["to"] == PHONE
        assert logged["text"] == "Tienda: order ord_20261125_0042 has shipped. Tracking number: DTDC123456789IN."
        rows = await stored(shop)
        assert [(r["notification_id"], r["status"], r["attempts"]) for r in rows if r["type"] == "ORDER_SHIPPED"] == [
            (email["notificationId"], "SENT", 1),
            (sms["notificationId"], "SENT", 1),
        ]

    async def test_a_named_channel_is_the_only_one(self, shop: Shop) -> None:
        user_id = await shop.register(phone=PHONE)

        response = await shop.client.post(SEND, json=_shipped(user_id) | {"channel": "SMS"}, headers=service_auth(shop))

        assert response.status_code == 202, response.text
        assert [(n["channel"], n["recipient"]) for n in response.json()["notifications"]] == [("SMS", PHONE)]
        assert [m for m in shop.mails() if "shipped" in str(m["Subject"])] == []

    async def test_the_same_idempotency_key_sends_once(self, shop: Shop) -> None:
        user_id = await shop.register()
        auth = service_auth(shop) | {"Idempotency-Key": "ship-ord_20261125_0042"}

        first = await shop.client.post(SEND, json=_shipped(user_id), headers=auth)
        again = await shop.client.post(SEND, json=_shipped(user_id), headers=auth)

        assert (first.status_code, again.status_code) == (202, 202)
        [sent] = first.json()["notifications"]
        [replayed] = again.json()["notifications"]
        assert replayed["notificationId"] == sent["notificationId"]
        assert replayed["status"] == "SENT"
        assert len([m for m in shop.mails() if "shipped" in str(m["Subject"])]) == 1

    async def test_low_stock_without_a_user_goes_to_every_active_admin(self, shop: Shop) -> None:
        await shop.admin("root@example.com")
        await shop.admin("ops@example.com")
        await shop.register("asha@example.com")
        body = {"type": "LOW_STOCK", "payload": {"productId": "p_gone", "available": 2, "threshold": 5}}

        response = await shop.client.post(SEND, json=body, headers=service_auth(shop))

        assert response.status_code == 202, response.text
        assert [(n["recipient"], n["channel"]) for n in response.json()["notifications"]] == [
            ("root@example.com", "EMAIL"),
            ("ops@example.com", "EMAIL"),
        ]
        mails = [m for m in shop.mails() if "Low stock" in str(m["Subject"])]
        assert sorted(str(m["To"]) for m in mails) == ["ops@example.com", "root@example.com"]
        assert {str(m["Subject"]) for m in mails} == {"Low stock: p_gone, 2 left"}

    async def test_the_api_alias_answers_the_same(self, shop: Shop) -> None:
        user_id = await shop.register()

        response = await shop.client.post(
            "/api/notifications/send", json={"userId": user_id, "type": "WELCOME"}, headers=service_auth(shop)
        )

        assert response.status_code == 202, response.text
        assert response.json()["notifications"][0]["type"] == "WELCOME"


class TestSendRefused:
    @pytest.mark.parametrize(
        ("body", "details"),
        [
            ({"userId": "u_x", "payload": {}}, ["body.type"]),
            ({"userId": "u_x", "type": "BIRTHDAY"}, ["body.type"]),
            ({"userId": "u_x", "type": "WELCOME", "channel": "PIGEON"}, ["body.channel"]),
            ({"userId": "u_x", "type": "WELCOME", "payload": "hi"}, ["body.payload"]),
            ({"userId": "u_x", "type": "WELCOME", "urgent": True}, ["body.urgent"]),
            ({"userId": "", "type": "WELCOME"}, ["body.userId"]),
        ],
    )
    async def test_a_malformed_body_is_400_naming_the_fields(
        self, shop: Shop, body: dict[str, Any], details: list[str]
    ) -> None:
        response = await shop.client.post(SEND, json=body, headers=service_auth(shop))

        assert fields(assert_error(response, 400, "VALIDATION_FAILED")) == details
        assert await stored(shop) == []

    async def test_a_payload_missing_what_the_type_shows_is_400_naming_the_fields(self, shop: Shop) -> None:
        user_id = await shop.register()
        await shop.relay()
        body = {"userId": user_id, "type": "ORDER_CONFIRMATION", "payload": {"totalAmount": "lots", "items": [{}]}}

        response = await shop.client.post(SEND, json=body, headers=service_auth(shop))

        assert fields(assert_error(response, 400, "VALIDATION_FAILED")) == [
            "body.payload.items.0.name",
            "body.payload.items.0.quantity",
            "body.payload.items.0.unitPrice",
            "body.payload.orderId",
            "body.payload.totalAmount",
        ]
        await _nothing_sent(shop)

    async def test_a_reset_code_that_is_not_digits_is_400(self, shop: Shop) -> None:
        user_id = await shop.register()

        response = await shop.client.post(
            SEND,
            json={"userId": user_id, "type": "PASSWORD_RESET_OTP", "payload": {"code": "abc"}},
            headers=service_auth(shop),
        )

        assert fields(assert_error(response, 400, "VALIDATION_FAILED")) == ["body.payload.code"]

    async def test_sms_for_a_type_without_one_is_400(self, shop: Shop) -> None:
        user_id = await shop.register(phone=PHONE)

        response = await shop.client.post(
            SEND, json={"userId": user_id, "type": "WELCOME", "channel": "SMS"}, headers=service_auth(shop)
        )

        assert fields(assert_error(response, 400, "CHANNEL_NOT_SUPPORTED")) == ["body.channel"]
        assert await stored(shop) == []

    async def test_no_user_for_a_type_that_needs_one_is_400(self, shop: Shop) -> None:
        response = await shop.client.post(SEND, json={"type": "WELCOME"}, headers=service_auth(shop))

        assert fields(assert_error(response, 400, "VALIDATION_FAILED")) == ["body.userId"]
        assert await stored(shop) == []

    async def test_an_unknown_user_is_404(self, shop: Shop) -> None:
        response = await shop.client.post(SEND, json=_shipped("u_nobody"), headers=service_auth(shop))

        assert_error(response, 404, "USER_NOT_FOUND", message="User not found")
        assert await stored(shop) == []
        assert shop.mails() == []

    async def test_sms_to_a_user_without_a_phone_is_409(self, shop: Shop) -> None:
        user_id = await shop.register()
        await shop.relay()

        response = await shop.client.post(SEND, json=_shipped(user_id) | {"channel": "SMS"}, headers=service_auth(shop))

        assert_error(response, 409, "NO_PHONE_NUMBER")
        await _nothing_sent(shop)


class TestRead:
    async def test_an_admin_reads_one_with_its_reset_code_masked(self, shop: Shop) -> None:
        user_id = await shop.register(phone=PHONE)
        _, admin = await shop.admin()
        sent = await shop.client.post(
            SEND,
            json={"userId": user_id, "type": "PASSWORD_RESET_OTP", "payload": {"code": "482913", "minutes": 10}},
            headers=admin,
        )
        email, sms = sent.json()["notifications"]
        assert email["payload"] == {"code": "******", "minutes": 10}

        response = await shop.client.get(f"{NOTIFICATIONS}/{sms['notificationId']}", headers=admin)

        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == READ_FIELDS
        assert (body["channel"], body["recipient"], body["status"], body["attempts"]) == ("SMS", PHONE, "SENT", 1)
        assert body["payload"] == {"code": "******", "minutes": 10}
        assert body["sentAt"] is not None
        stored_codes = [r["payload"].get("code") for r in await stored(shop) if r["type"] == "PASSWORD_RESET_OTP"]
        assert stored_codes == ["******", "******"]  # not kept once sent

    async def test_a_user_may_not_read_them(self, shop: Shop) -> None:
        _, auth = await shop.user()
        await shop.relay()
        [row] = await stored(shop)

        response = await shop.client.get(f"{NOTIFICATIONS}/{row['notification_id']}", headers=auth)
        listing = await shop.client.get(NOTIFICATIONS, headers=auth)

        assert_error(response, 403, "FORBIDDEN")
        assert_error(listing, 403, "FORBIDDEN")

    async def test_an_unknown_one_is_404(self, shop: Shop) -> None:
        _, admin = await shop.admin()

        response = await shop.client.get(f"{NOTIFICATIONS}/ntf_nothing", headers=admin)

        assert_error(response, 404, "NOTIFICATION_NOT_FOUND")

    async def test_the_list_filters_and_pages_newest_first(self, shop: Shop) -> None:
        asha = await shop.register("asha@example.com", phone=PHONE)
        ravi = await shop.register("ravi@example.com")
        _, admin = await shop.admin()
        await shop.relay()  # three welcome e-mails
        shop.clock.advance(seconds=1)
        await shop.client.post(SEND, json=_shipped(asha), headers=admin)  # e-mail and SMS
        shop.clock.advance(seconds=1)
        await shop.client.post(SEND, json=_shipped(ravi), headers=admin)

        everything = await shop.client.get(NOTIFICATIONS, params={"size": 2}, headers=admin)
        ashas = await shop.client.get(NOTIFICATIONS, params={"userId": asha}, headers=admin)
        shipped_sms = await shop.client.get(
            f"{NOTIFICATIONS}?type=ORDER_SHIPPED&status=SENT&page=1&size=10", headers=admin
        )
        pending = await shop.client.get(NOTIFICATIONS, params={"status": "PENDING"}, headers=admin)

        assert everything.status_code == 200, everything.text
        page = everything.json()
        assert (page["page"], page["size"], page["total"]) == (1, 2, 6)
        assert [(n["userId"], n["type"]) for n in page["items"]] == [
            (ravi, "ORDER_SHIPPED"),
            (asha, "ORDER_SHIPPED"),
        ]
        assert sorted((n["type"], n["channel"]) for n in ashas.json()["items"]) == [
            ("ORDER_SHIPPED", "EMAIL"),
            ("ORDER_SHIPPED", "SMS"),
            ("WELCOME", "EMAIL"),
        ]
        assert shipped_sms.json()["total"] == 3
        assert pending.json() == {"items": [], "page": 1, "size": 20, "total": 0}

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("size=101", "query.size"),
            ("page=0", "query.page"),
            ("status=LOST", "query.status"),
            ("type=X", "query.type"),
        ],
    )
    async def test_bad_list_parameters_are_400(self, shop: Shop, query: str, field: str) -> None:
        _, admin = await shop.admin()

        response = await shop.client.get(f"{NOTIFICATIONS}?{query}", headers=admin)

        assert fields(assert_error(response, 400, "VALIDATION_FAILED")) == [field]
