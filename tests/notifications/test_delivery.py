"""Sending: the confirmation e-mail of an order arrives over real SMTP; a redelivered event
sends nothing twice; a send that fails is tried again with backoff until SENT, or FAILED."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.conftest import Shop
from tests.notifications.conftest import ALL
from tests.notifications.support import (
    PHONE,
    SEND,
    SmtpServer,
    order_payload,
    processed,
    publish,
    rebuilt,
    redeliver,
    retry_job,
    service_auth,
    stored,
)
from tests.orders.support import buyer, order_for
from tienda.notifications import repository
from tienda.notifications.domain import NotificationType
from tienda.notifications.wiring import notification_service


def _money(amount: object) -> str:
    return f"INR {Decimal(str(amount)):,.2f}"


class TestConfirmationMail:
    async def test_a_placed_order_mails_its_confirmation_over_smtp(self, mail_shop: Shop, smtp: SmtpServer) -> None:
        smtp.start()
        _, admin = await mail_shop.admin()
        who = await buyer(mail_shop, "asha@example.com")

        order = await order_for(mail_shop, admin, who, price=1299.0)
        await mail_shop.relay()

        [mail] = smtp.about("is confirmed")
        assert mail.recipients == ["asha@example.com"]
        assert str(mail.message["To"]) == "asha@example.com"
        assert str(mail.message["From"]) == mail_shop.settings.mail_from
        assert str(mail.message["Subject"]) == f"Your Tienda order {order['orderId']} is confirmed"
        total = _money(order["totalAmount"])
        text, html = mail.part("plain"), mail.part("html")
        for body in (text, html):
            assert order["orderId"] in body
            assert total in body
            assert "Men&#39;s T-Shirt" in body if body is html else "1 x Men's T-Shirt" in body
            assert "cash on delivery" in body
        assert "1 x Men's T-Shirt @ INR 1,299.00 = INR 1,299.00" in text
        [row] = [r for r in await stored(mail_shop) if r["type"] == "ORDER_CONFIRMATION"]
        assert (row["user_id"], row["recipient"], row["channel"], row["status"], row["attempts"]) == (
            who.user_id,
            "asha@example.com",
            "EMAIL",
            "SENT",
            1,
        )
        assert row["sent_at"] == mail_shop.clock.now()
        assert row["next_attempt_at"] is None
        assert row["last_error"] is None
        assert row["provider_message_id"] == str(mail.message["Message-ID"])

    async def test_the_html_part_escapes_what_it_shows(self, mail_shop: Shop, smtp: SmtpServer) -> None:
        smtp.start()
        user_id = await mail_shop.register("asha@example.com", fullName="Asha <b>Rao</b>")

        await publish(mail_shop, "orders", "order.confirmed", order_payload(user_id))

        [mail] = smtp.about("is confirmed")
        html = mail.part("html")
        assert "Mug &lt;Classic&gt;" in html
        assert "Hello Asha &lt;b&gt;Rao&lt;/b&gt;," in html
        assert "<b>" not in html
        text = mail.part("plain")
        assert "Hello Asha <b>Rao</b>," in text
        assert "2 x Men's T-Shirt (SKU TSHIRT-RED-M) @ INR 499.00 = INR 998.00" in text
        assert "1 x Mug <Classic> @ INR 250.50 = INR 250.50" in text
        assert "Total: INR 1,473.23" in text


class TestRedelivery:
    async def test_an_event_delivered_five_times_makes_one_notification_per_channel(
        self, mail_shop: Shop, smtp: SmtpServer
    ) -> None:
        smtp.start()
        user_id = await mail_shop.register("asha@example.com", phone=PHONE)
        await mail_shop.relay()
        smtp.received.clear()  # the welcome e-mail

        event_id = await publish(mail_shop, "orders", "order.confirmed", order_payload(user_id))
        for _ in range(4):
            assert await redeliver(mail_shop, "orders", event_id) == 1

        rows = [r for r in await stored(mail_shop) if r["type"] == "ORDER_CONFIRMATION"]
        assert sorted((r["channel"], r["recipient"], r["status"], r["attempts"]) for r in rows) == [
            ("EMAIL", "asha@example.com", "SENT", 1),
            ("SMS", PHONE, "SENT", 1),
        ]
        assert smtp.subjects() == ["Your Tienda order ord_20261125_0042 is confirmed"]
        assert ("notifications.order_confirmation", event_id) in await processed(mail_shop)


class TestRetry:
    async def test_smtp_down_leaves_it_pending_and_the_job_sends_it_once_smtp_is_back(
        self, mail_shop: Shop, smtp: SmtpServer
    ) -> None:
        user_id = await mail_shop.register("asha@example.com")
        await mail_shop.relay()  # the welcome e-mail fails too: SMTP is down
        start = mail_shop.clock.now()

        await publish(mail_shop, "orders", "order.confirmed", order_payload(user_id))

        [row] = [r for r in await stored(mail_shop) if r["type"] == "ORDER_CONFIRMATION"]
        assert (row["status"], row["attempts"], row["sent_at"]) == ("PENDING", 1, None)
        assert row["next_attempt_at"] == start + timedelta(seconds=30)
        assert row["last_error"].startswith("ConnectionRefusedError")

        mail_shop.clock.advance(seconds=29)
        assert await retry_job(mail_shop) == 0  # not due yet
        assert [r for r in await stored(mail_shop) if r["type"] == "ORDER_CONFIRMATION"] == [row]

        smtp.start()
        mail_shop.clock.advance(seconds=1)
        assert await retry_job(mail_shop) == 2  # the welcome e-mail and the confirmation

        [row] = [r for r in await stored(mail_shop) if r["type"] == "ORDER_CONFIRMATION"]
        assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("SENT", 2, None)
        assert row["sent_at"] == start + timedelta(seconds=30)
        assert row["last_error"] is None
        assert sorted(smtp.subjects()) == ["Welcome to Tienda", "Your Tienda order ord_20261125_0042 is confirmed"]
        assert await retry_job(mail_shop) == 0
        assert len(smtp.received) == 2

    @ALL
    async def test_after_the_last_attempt_it_is_failed_with_the_error(self, mail_shop: Shop, smtp: SmtpServer) -> None:
        user_id = await mail_shop.register("asha@example.com")
        start = mail_shop.clock.now()
        await publish(mail_shop, "users", "user.password_reset_requested", {"userId": user_id, "code": "482913"})
        waits = []

        for attempt in range(2, 6):
            [row] = [r for r in await stored(mail_shop) if r["type"] == "PASSWORD_RESET_OTP"]
            assert (row["status"], row["attempts"]) == ("PENDING", attempt - 1)
            waits.append(row["next_attempt_at"] - mail_shop.clock.now())
            mail_shop.clock.advance(seconds=waits[-1].total_seconds())
            assert await retry_job(mail_shop) == 2  # with the welcome e-mail, failing alike

        assert waits == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
        [row] = [r for r in await stored(mail_shop) if r["type"] == "PASSWORD_RESET_OTP"]
        assert (row["status"], row["attempts"], row["next_attempt_at"], row["sent_at"]) == ("FAILED", 5, None, None)
        assert row["last_error"].startswith("ConnectionRefusedError")
        assert row["payload"]["code"] == "******"  # a code nobody got is not kept either
        assert row["updated_at"] == start + timedelta(seconds=450)
        smtp.start()
        mail_shop.clock.advance(hours=1)
        assert await retry_job(mail_shop) == 0
        assert smtp.received == []

    async def test_one_made_from_an_event_whose_sender_stopped_is_sent_when_its_claim_runs_out(
        self, mail_shop: Shop, smtp: SmtpServer
    ) -> None:
        """An event's notifications are created claimed for their first attempt; if the process
        stops after that commit and before it sends, the retry job sends them once the claim
        (the sending lease) has run out, and only then."""
        smtp.start()
        user_id = await mail_shop.register("late@example.com")
        await mail_shop.relay()  # the welcome e-mail
        smtp.received.clear()
        service = notification_service(mail_shop.platform)
        async with mail_shop.platform.db("notifications").uow() as uow:
            claimed = await service.from_event(
                uow, event_id="evt-stopped", kind=NotificationType.ORDER_SHIPPED, payload=order_payload(user_id)
            )
            await uow.commit()  # ... and the process stops before `send_claimed`
        [row] = [r for r in await stored(mail_shop) if r["type"] == "ORDER_SHIPPED"]
        assert [c.id for c in claimed] == [row["id"]]
        assert (row["status"], row["attempts"]) == ("PENDING", 1)

        assert await retry_job(mail_shop) == 0  # claimed: nobody else takes it meanwhile
        mail_shop.clock.advance(seconds=service.lease.total_seconds())
        assert await retry_job(mail_shop) == 1
        assert await retry_job(mail_shop) == 0

        [row] = [r for r in await stored(mail_shop) if r["type"] == "ORDER_SHIPPED"]
        assert (row["status"], row["attempts"]) == ("SENT", 2)
        assert [m.recipients for m in smtp.received] == [["late@example.com"]]

    @ALL
    async def test_two_senders_at_once_send_each_notification_once(self, mail_shop: Shop, smtp: SmtpServer) -> None:
        ids = [await mail_shop.register(f"buyer{n}@example.com") for n in range(8)]
        await mail_shop.relay()  # 8 welcome e-mails, each failed once: SMTP is down
        assert {(r["status"], r["attempts"]) for r in await stored(mail_shop)} == {("PENDING", 1)}
        smtp.start()
        mail_shop.clock.advance(seconds=30)

        async with rebuilt(mail_shop, smtp_url=mail_shop.settings.smtp_url) as other:
            handled = await asyncio.gather(retry_job(mail_shop), retry_job(other))

        assert sum(handled) == 8
        rows = await stored(mail_shop)
        assert {(r["status"], r["attempts"]) for r in rows} == {("SENT", 2)}
        assert sorted(r.recipients[0] for r in smtp.received) == sorted(f"buyer{n}@example.com" for n in range(8))
        assert sorted(r["user_id"] for r in rows) == sorted(ids)


@pytest.mark.parametrize("backend", ["postgres", "mysql"], indirect=True)
class TestClaimBesideASend:
    async def test_a_notification_is_sent_while_a_sender_holds_its_claim(self, shop: Shop) -> None:
        """A sender's claim of the due notifications, left open (nothing is due: all were
        sent), and a send meanwhile answers at once. With one locking read of the
        `(status, next_attempt_at)` index, InnoDB locked the gap a new PENDING row goes into,
        even with nothing found, and the send waited for the claim's commit."""
        user_id = await shop.register("asha@example.com")
        body = {"userId": user_id, "type": "WELCOME"}
        assert (await shop.client.post(SEND, json=body, headers=service_auth(shop))).status_code == 202
        loop = asyncio.get_running_loop()

        async with shop.platform.db("notifications").uow() as claiming:
            now = shop.clock.now()
            taken = await repository.claim(
                claiming.session, now=now, lease_until=now + timedelta(minutes=1), max_attempts=5, limit=100
            )
            assert taken == []

            async def send() -> float:
                response = await shop.client.post(SEND, json=body, headers=service_auth(shop))
                assert response.status_code == 202, response.text
                return loop.time()

            sending = asyncio.create_task(send())
            await asyncio.wait([sending], timeout=2)
            claim_open_until = loop.time()
            await claiming.session.rollback()
            assert await sending <= claim_open_until  # answered while the claim was open
        assert [s["status"] for s in await stored(shop)] == ["SENT", "SENT"]
