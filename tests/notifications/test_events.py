"""The events that make notifications, through the real flows where there is one: a welcome
e-mail on registration, the reset code by e-mail and SMS, stock alerts to every admin, and
each order event's e-mail. In dev the e-mail is written as .eml files under <data_dir>/mail."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.carts.support import product_for_sale
from tests.conftest import Shop
from tests.notifications.support import PHONE, order_payload, processed, publish, redeliver, stored
from tests.platform.test_outbox import _statements_run


def _text(mail: EmailMessage) -> str:
    return str(mail.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]


def _html(mail: EmailMessage) -> str:
    return str(mail.get_body(preferencelist=("html",)).get_content())  # type: ignore[union-attr]


class TestWelcome:
    async def test_registering_writes_a_welcome_eml_under_the_data_dir(self, shop: Shop) -> None:
        response = await shop.client.post(
            "/api/v1/users/register",
            json={"email": "asha@example.com", "password": "P@ssw0rd!", "fullName": "Asha Rao"},
        )
        assert response.status_code == 201, response.text
        assert list((shop.data_dir / "mail").glob("*.eml")) == []  # sent after the commit, by the relay

        await shop.relay()

        [path] = list((shop.data_dir / "mail").glob("*.eml"))
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        assert str(mail["To"]) == "asha@example.com"
        assert str(mail["Subject"]) == "Welcome to Tienda, Asha Rao"
        assert "Hello Asha Rao," in _text(mail)
        assert "your account is ready" in _html(mail)
        [row] = await stored(shop)
        assert (row["user_id"], row["type"], row["channel"], row["status"]) == (
            response.json()["userId"],
            "WELCOME",
            "EMAIL",
            "SENT",
        )


class TestPasswordReset:
    async def test_the_code_goes_by_email_and_by_sms_to_a_user_with_a_phone(self, shop: Shop) -> None:
        await shop.register("asha@example.com", phone=PHONE, fullName="Asha Rao")
        await shop.relay()

        with capture_logs() as logs:
            response = await shop.client.post("/api/v1/users/forgot-password", json={"email": "asha@example.com"})
            await shop.relay()

        assert response.status_code == 202
        [mail] = [m for m in shop.mails() if "reset code" in str(m["Subject"])]
        code = str(mail["Subject"]).rsplit(" ", 1)[-1]
        assert re.fullmatch(r"\d{6}", code)
        assert f"Your Tienda password reset code is {code}." in _text(mail)
        assert "expires in 10 minutes" in _text(mail)
        [sms] = [entry for entry in logs if entry["event"] == "sms_sent"]
        assert (sms["to"], sms["text"]) == (
            PHONE,
            f"{code} is your Tienda password reset code. It expires in 10 minutes. Never share it.",
        )
        reset = await shop.client.post(
            "/api/v1/users/reset-password",
            json={"email": "asha@example.com", "otp": code, "newPassword": "N3w-Passw0rd"},
        )
        assert reset.status_code == 200, reset.text


class TestLowStock:
    async def test_every_active_admin_is_mailed_naming_the_product(self, shop: Shop) -> None:
        _, root = await shop.admin("root@example.com")
        ops_id, _ = await shop.admin("ops@example.com")
        gone_id, _ = await shop.admin("gone@example.com")
        await shop.register("asha@example.com")
        for user_id, change in ((ops_id, {"fullName": "Ops Team"}), (gone_id, {"isActive": False})):
            response = await shop.client.patch(f"/api/v1/users/{user_id}", json=change, headers=root)
            assert response.status_code == 200, response.text
        product = await product_for_sale(shop, root, name="Men's T-Shirt", stock=10)
        variant = product["variants"][0]["variantId"]
        await shop.relay()

        response = await shop.client.post(
            "/api/v1/inventory/adjust",
            json={
                "productId": product["productId"],
                "variantId": variant,
                "delta": -7,
                "reason": "Damaged",
                "threshold": 5,
            },
            headers=root,
        )
        assert response.status_code == 200, response.text
        await shop.relay()

        mails = [m for m in shop.mails() if str(m["Subject"]).startswith("Low stock")]
        assert sorted(str(m["To"]) for m in mails) == ["ops@example.com", "root@example.com"]
        assert {str(m["Subject"]) for m in mails} == {"Low stock: Men's T-Shirt (red / M), 3 left"}
        [ops] = [m for m in mails if str(m["To"]) == "ops@example.com"]
        text = _text(ops)
        assert "Hello Ops Team," in text
        assert f"Product:    {product['productId']} (Men's T-Shirt)" in text
        assert f"Variant:    {variant} (red / M)" in text
        assert "Available:  3 (alert threshold 5)" in text
        assert "In stock:   3, of which 0 reserved for orders" in text
        rows = [r for r in await stored(shop) if r["type"] == "LOW_STOCK"]
        assert sorted((r["recipient"], r["status"]) for r in rows) == [
            ("ops@example.com", "SENT"),
            ("root@example.com", "SENT"),
        ]


class TestOrderEvents:
    @pytest.mark.parametrize(
        ("event_type", "extra", "subject", "says"),
        [
            (
                "order.confirmed",
                {},
                "Your Tienda order ord_20261125_0042 is confirmed",
                "You pay INR 1,473.23 in cash on delivery.",
            ),
            (
                "order.shipped",
                {"status": "SHIPPED", "trackingNumber": "DTDC123456789IN"},
                "Your Tienda order ord_20261125_0042 has shipped",
                "Tracking number: DTDC123456789IN",
            ),
            (
                "order.delivered",
                {"status": "DELIVERED", "trackingNumber": "DTDC123456789IN"},
                "Your Tienda order ord_20261125_0042 was delivered",
                "Order ord_20261125_0042 was delivered. We hope you enjoy it.",
            ),
            (
                "order.cancelled",
                {"status": "CANCELLED", "paymentMethod": "CARD", "paymentStatus": "REFUNDED"},
                "Your Tienda order ord_20261125_0042 was cancelled",
                "A refund of INR 1,473.23 is on its way to your original payment method.",
            ),
            (
                "order.cancelled",
                {"status": "CANCELLED", "paymentStatus": "NOT_CHARGED", "reason": "Changed my mind"},
                "Your Tienda order ord_20261125_0042 was cancelled",
                "Reason: Changed my mind",
            ),
        ],
    )
    async def test_each_order_event_mails_the_buyer(
        self, shop: Shop, event_type: str, extra: dict[str, Any], subject: str, says: str
    ) -> None:
        user_id = await shop.register("asha@example.com", fullName="Asha Rao")
        await shop.relay()

        await publish(shop, "orders", event_type, order_payload(user_id, **extra))

        [mail] = [m for m in shop.mails() if "Welcome" not in str(m["Subject"])]
        assert str(mail["Subject"]) == subject
        assert str(mail["To"]) == "asha@example.com"
        text = _text(mail)
        assert says in text
        assert "2 x Men's T-Shirt (SKU TSHIRT-RED-M) @ INR 499.00 = INR 998.00" in text
        assert "Total: INR 1,473.23" in text
        assert "ord_20261125_0042" in _html(mail)

    async def test_sms_goes_only_for_the_types_that_have_one(self, shop: Shop) -> None:
        user_id = await shop.register("asha@example.com", phone=PHONE)
        await shop.relay()

        with capture_logs() as logs:
            for event_type in ("order.confirmed", "order.cancelled", "order.delivered"):
                await publish(shop, "orders", event_type, order_payload(user_id))

        assert [entry["text"] for entry in logs if entry["event"] == "sms_sent"] == [
            "Tienda: order ord_20261125_0042 is confirmed: 3 items, total INR 1,473.23, to pay on delivery.",
            "Tienda: order ord_20261125_0042 was delivered. Enjoy!",
        ]
        rows = [r for r in await stored(shop) if r["type"] != "WELCOME"]
        assert [(r["type"], r["channel"]) for r in rows] == [
            ("ORDER_CONFIRMATION", "EMAIL"),
            ("ORDER_CONFIRMATION", "SMS"),
            ("ORDER_CANCELLED", "EMAIL"),
            ("ORDER_DELIVERED", "EMAIL"),
            ("ORDER_DELIVERED", "SMS"),
        ]

    async def test_an_event_for_an_unknown_user_makes_nothing_and_is_not_retried(self, shop: Shop) -> None:
        event_id = await publish(shop, "orders", "order.confirmed", order_payload("u_nobody"))

        assert await stored(shop) == []
        assert shop.mails() == []
        assert ("notifications.order_confirmation", event_id) in await processed(shop)
        assert await shop.relay() == 0


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
class TestOneStatementOnPostgreSQL:
    """A user's notifications and the event's processed row go in one statement; what it
    cannot take (a user it does not know, a duplicate) goes through the unit of work."""

    async def test_the_notifications_and_the_processed_row_are_one_statement(self, shop: Shop) -> None:
        user_id = await shop.register("asha@example.com", phone=PHONE, fullName="Asha Rao")
        await shop.relay()

        async with _statements_run([shop.platform.db("notifications")]) as taken:
            event_id = await publish(shop, "orders", "order.confirmed", order_payload(user_id))
            run = await taken()

        mine = [s for s in run if re.search(r"\bnotifications(_processed_events)?\b", s)]
        # one insert of both rows with the processed row; then each send settles its row
        assert [s.split()[0] for s in mine] == ["WITH", "UPDATE", "UPDATE"], mine
        assert "notifications_processed_events" in mine[0]
        rows = [r for r in await stored(shop) if r["type"] == "ORDER_CONFIRMATION"]
        assert [(r["channel"], r["status"], r["attempts"]) for r in rows] == [("EMAIL", "SENT", 1), ("SMS", "SENT", 1)]
        [mail] = [m for m in shop.mails() if "confirmed" in str(m["Subject"])]
        assert str(mail["To"]) == "asha@example.com"
        assert "Asha Rao" in _text(mail)
        assert ("notifications.order_confirmation", event_id) in await processed(shop)

    async def test_delivered_again_it_makes_nothing_more(self, shop: Shop) -> None:
        user_id = await shop.register("asha@example.com")
        await shop.relay()
        event_id = await publish(shop, "orders", "order.confirmed", order_payload(user_id))

        await redeliver(shop, "orders", event_id)

        assert [r["type"] for r in await stored(shop)] == ["WELCOME", "ORDER_CONFIRMATION"]
        assert len([m for m in shop.mails() if "confirmed" in str(m["Subject"])]) == 1

    async def test_an_unknown_user_is_left_to_the_unit_of_work_which_records_the_event(self, shop: Shop) -> None:
        with capture_logs() as logs:
            event_id = await publish(shop, "orders", "order.confirmed", order_payload("u_nobody"))

        assert await stored(shop) == []
        assert ("notifications.order_confirmation", event_id) in await processed(shop)
        assert [e["event"] for e in logs if e["event"] == "notification_user_unknown"] == [
            "notification_user_unknown"
        ], "said once"
