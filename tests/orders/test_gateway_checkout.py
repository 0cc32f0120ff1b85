"""Checkout with an online payment (SEED.md 7.4), end to end through the API and the sandbox
gateway: the order waits for the gateway's signed webhook, which confirms it (and sells the
units) or fails it (and gives them back); the worker gives up on payments that never come, a
payment that comes too late is refunded, and cancelling or refunding a paid order goes back
through the gateway."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.carts.support import line, product_for_sale
from tests.conftest import Shop
from tests.orders.conftest import ALL
from tests.orders.support import (
    ORDERS,
    Buyer,
    assert_error,
    buyer,
    cart_lines,
    coupon_state,
    create_coupon,
    fill,
    order_stored,
    relogin,
    stock,
    world,
)
from tests.payments.support import deliver, payment_events, payment_row, refunds, signed_event
from tests.platform.test_outbox import _statements_run
from tienda.orders.models import Order
from tienda.orders.wiring import saga
from tienda.platform.events import Event

TOTAL = Decimal("637.82")  # 499 + 18% tax (89.82) + 49 shipping


async def gateway_order(
    shop: Shop, who: Buyer, product: dict[str, Any], quantity: int = 1, **extra: Any
) -> dict[str, Any]:
    await fill(shop, who, line(product, quantity))
    response = await shop.client.post(ORDERS, json=who.body(paymentMethod="PAYMENT_GATEWAY", **extra), headers=who.auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def order_of(shop: Shop, who: Buyer, order_id: str) -> dict[str, Any]:
    response = await shop.client.get(f"{ORDERS}/{order_id}", headers=who.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def setup(shop: Shop, stock_count: int = 5) -> tuple[dict[str, str], Buyer, dict[str, Any]]:
    _, admin = await shop.admin()
    product = await product_for_sale(shop, admin, price=499, stock=stock_count)
    return admin, await buyer(shop), product


class TestPaying:
    async def test_the_order_waits_for_its_payment_then_the_webhook_confirms_it(self, shop: Shop) -> None:
        _, asha, shirt = await setup(shop)

        # when she checks out with the gateway
        order = await gateway_order(shop, asha, shirt)

        # then the order is CREATED with where to pay; the unit is held and her cart is empty
        assert (order["status"], order["paymentStatus"], order["paymentMethod"]) == (
            "CREATED",
            "PENDING",
            "PAYMENT_GATEWAY",
        )
        assert order["paymentId"].startswith("pay_")
        assert order["paymentUrl"] == f"http://shop.test/api/v1/payments/sandbox/{order['paymentId']}"
        assert Decimal(str(order["totalAmount"])) == TOTAL
        assert await stock(shop, shirt) == (5, 1, 4)
        assert await cart_lines(shop, asha) == []
        payment = await shop.client.get(f"/api/v1/payments/{order['paymentId']}", headers=asha.auth)
        assert payment.status_code == 200, payment.text
        assert (payment.json()["status"], payment.json()["amount"], payment.json()["orderId"]) == (
            "PENDING",
            float(TOTAL),
            order["orderId"],
        )

        # when the gateway reports the payment captured
        body, headers = signed_event(shop, await payment_row(shop, order["paymentId"]))
        answer = await deliver(shop, body, headers)

        # then the webhook is acknowledged, the order CONFIRMED and the unit sold
        assert answer.status_code == 200, answer.text
        assert (answer.json()["outcome"], answer.json()["paymentId"]) == ("CAPTURED", order["paymentId"])
        confirmed = await order_of(shop, asha, order["orderId"])
        assert (confirmed["status"], confirmed["paymentStatus"], confirmed["paymentUrl"]) == (
            "CONFIRMED",
            "CAPTURED",
            None,
        )
        assert await stock(shop, shirt) == (4, 0, 4)
        assert [e["orderId"] for e in await shop.events("orders", "order.confirmed")] == [order["orderId"]]
        assert (await payment_row(shop, order["paymentId"]))["status"] == "CAPTURED"

    async def test_a_payment_captured_before_the_order_moved_on_to_wait_confirms_it(self, shop: Shop) -> None:
        """The payment is opened while the order is still PLACED: the gateway may report it paid
        before the order is moved on to PAYMENT_PENDING (or the process stopped in between)."""
        _, asha, shirt = await setup(shop)
        order = await gateway_order(shop, asha, shirt)
        async with shop.platform.db("orders").engine.begin() as conn:
            await conn.execute(update(Order).where(Order.order_id == order["orderId"]).values(saga_step="PLACED"))

        body, headers = signed_event(shop, await payment_row(shop, order["paymentId"]))
        answer = await deliver(shop, body, headers)

        assert answer.json()["outcome"] == "CAPTURED"
        stored = await order_stored(shop, order["orderId"])
        assert (stored["status"], stored["saga_step"], stored["payment_status"]) == ("CONFIRMED", "DONE", "CAPTURED")
        assert await stock(shop, shirt) == (4, 0, 4)

    async def test_the_sandbox_page_approves(self, shop: Shop) -> None:
        _, asha, shirt = await setup(shop)
        order = await gateway_order(shop, asha, shirt)

        page = await shop.client.get(order["paymentUrl"])
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert order["orderId"] in page.text
        assert "637.82" in page.text
        assert f"{order['paymentId']}/approve" in page.text

        approved = await shop.client.post(f"{order['paymentUrl']}/approve")
        assert approved.status_code == 303
        assert approved.headers["location"] == f"/api/v1/payments/sandbox/{order['paymentId']}"
        await shop.relay()

        assert (await order_of(shop, asha, order["orderId"]))["status"] == "CONFIRMED"
        assert await stock(shop, shirt) == (4, 0, 4)
        after = await shop.client.get(order["paymentUrl"])
        assert "CAPTURED" in after.text
        assert "/approve" not in after.text

    async def test_declined_fails_the_order_and_gives_everything_back(self, shop: Shop) -> None:
        admin, asha, shirt = await setup(shop)
        await create_coupon(shop, admin)
        order = await gateway_order(shop, asha, shirt, couponCode="SAVE50")
        assert await coupon_state(shop, "SAVE50") == (1, [(asha.user_id, order["orderId"])])

        declined = await shop.client.post(f"{order['paymentUrl']}/decline")
        assert declined.status_code == 303
        await shop.relay()

        failed = await order_of(shop, asha, order["orderId"])
        assert (failed["status"], failed["paymentStatus"], failed["failureReason"]) == (
            "FAILED",
            "FAILED",
            "PAYMENT_DECLINED",
        )
        assert await stock(shop, shirt) == (5, 0, 5)
        assert await coupon_state(shop, "SAVE50") == (0, [])
        assert (await payment_row(shop, order["paymentId"]))["status"] == "FAILED"
        assert (await order_stored(shop, order["orderId"]))["saga_step"] == "DONE"
        # a decision cannot be taken twice
        again = await shop.client.post(f"{order['paymentUrl']}/approve")
        assert again.status_code == 303
        await shop.relay()
        assert (await order_of(shop, asha, order["orderId"]))["status"] == "FAILED"


@ALL  # a capture of a PENDING payment is one statement on PostgreSQL, a unit of work elsewhere
class TestWebhooks:
    async def test_five_deliveries_and_a_late_failure_confirm_once(self, shop: Shop) -> None:
        _, asha, shirt = await setup(shop)
        order = await gateway_order(shop, asha, shirt)
        payment = await payment_row(shop, order["paymentId"])
        captured = signed_event(shop, payment, event_id="evt_capture")
        failure = signed_event(shop, payment, "payment.failed", event_id="evt_failure")

        outcomes = []
        for body, headers in (captured, captured, failure, captured, captured, captured, failure):
            response = await deliver(shop, body, headers)
            assert response.status_code == 200, response.text
            outcomes.append(response.json()["outcome"])

        assert outcomes == [
            "CAPTURED",
            "DUPLICATE",
            "NOT_DOWNGRADED",
            "DUPLICATE",
            "DUPLICATE",
            "DUPLICATE",
            "DUPLICATE",
        ]
        assert await payment_events(shop) == [("evt_capture", "CAPTURED"), ("evt_failure", "NOT_DOWNGRADED")]
        assert (await order_of(shop, asha, order["orderId"]))["status"] == "CONFIRMED"
        assert len(await shop.events("orders", "order.confirmed")) == 1
        assert len(await shop.events("payments", "payment.captured")) == 1
        assert await stock(shop, shirt) == (4, 0, 4)
        confirmations = [m for m in shop.mails() if order["orderId"] in str(m["Subject"])]
        assert len(confirmations) == 1
        assert "confirmed" in str(confirmations[0]["Subject"]).lower()
        async with shop.platform.db("inventory").engine.connect() as conn:
            from tienda.inventory.models import Movement

            commits = (await conn.execute(select(Movement.kind).where(Movement.kind == "COMMIT"))).all()
        assert len(commits) == 1

    async def test_a_failure_first_then_the_capture_is_refunded(self, shop: Shop) -> None:
        # the gateway said "failed", the order gave its units back; then the money came after all
        _, asha, shirt = await setup(shop)
        order = await gateway_order(shop, asha, shirt)
        payment = await payment_row(shop, order["paymentId"])
        await deliver(shop, *signed_event(shop, payment, "payment.failed", event_id="evt_f"))
        assert (await order_of(shop, asha, order["orderId"]))["status"] == "FAILED"

        late = await deliver(shop, *signed_event(shop, payment, event_id="evt_c"))

        assert late.json()["outcome"] == "CAPTURED_LATE"
        failed = await order_of(shop, asha, order["orderId"])
        assert (failed["status"], failed["paymentStatus"], Decimal(str(failed["refundedAmount"]))) == (
            "FAILED",
            "REFUNDED",
            TOTAL,
        )
        assert (await payment_row(shop, order["paymentId"]))["status"] == "REFUNDED"
        assert await refunds(shop) == [(TOTAL, "SUCCEEDED", f"{order['orderId']}:all")]
        assert await stock(shop, shirt) == (5, 0, 5)

    async def test_a_bad_signature_is_refused_and_records_nothing(self, shop: Shop) -> None:
        _, asha, shirt = await setup(shop)
        order = await gateway_order(shop, asha, shirt)
        payment = await payment_row(shop, order["paymentId"])
        forged = signed_event(shop, payment, secret="not-the-secret")
        body, headers = signed_event(shop, payment)
        tampered = (body.replace(b'"637.82"', b'"1.00"'), headers)
        old_body, _ = signed_event(shop, payment)
        shop.clock.advance(seconds=301)
        too_old = (old_body, headers)

        for sent_body, sent_headers in (forged, tampered, too_old, (body, {"content-type": "application/json"})):
            response = await deliver(shop, sent_body, sent_headers)
            assert_error(response, 400, "INVALID_SIGNATURE")

        assert await payment_events(shop) == []
        assert (await payment_row(shop, order["paymentId"]))["status"] == "PENDING"

    async def test_a_capture_of_another_amount_changes_nothing(self, shop: Shop) -> None:
        _, asha, shirt = await setup(shop)
        order = await gateway_order(shop, asha, shirt)
        payment = await payment_row(shop, order["paymentId"])

        cheaper = await deliver(shop, *signed_event(shop, payment, amount=Decimal("1.00")))
        dollars = await deliver(shop, *signed_event(shop, payment, currency="USD"))

        assert [cheaper.json()["outcome"], dollars.json()["outcome"]] == ["AMOUNT_MISMATCH", "AMOUNT_MISMATCH"]
        assert (await order_of(shop, asha, order["orderId"]))["status"] == "CREATED"
        assert (await payment_row(shop, order["paymentId"]))["status"] == "PENDING"

    async def test_an_unknown_payment_is_recorded_and_acknowledged(self, shop: Shop) -> None:
        payment = {
            "payment_id": "pay_unknown",
            "provider_reference": "sbx_unknown",
            "amount": "10.00",
            "currency": "INR",
        }
        response = await deliver(shop, *signed_event(shop, payment, event_id="evt_stray"))
        assert response.status_code == 200
        assert (response.json()["outcome"], response.json()["paymentId"]) == ("UNMATCHED", None)
        assert await payment_events(shop) == [("evt_stray", "UNMATCHED")]


async def _waiting_for_its_capture(
    shop: Shop, event_id: str
) -> tuple[tuple[Buyer, dict[str, Any]], dict[str, Any], bytes, dict[str, str]]:
    """A buyer and a product, her gateway order of one unit, and the gateway's signed capture of it."""
    _, asha, shirt = await setup(shop)
    order = await gateway_order(shop, asha, shirt)
    body, headers = signed_event(shop, await payment_row(shop, order["paymentId"]), event_id=event_id)
    return (asha, shirt), order, body, headers


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
class TestCaptureOnPostgreSQL:
    async def test_a_capture_is_one_read_and_one_statement_on_postgresql(self, shop: Shop) -> None:
        _, order, body, headers = await _waiting_for_its_capture(shop, "evt_once")

        async with _statements_run([shop.platform.db("payments")]) as taken:
            response = await deliver(shop, body, headers)
            run = await taken()

        assert response.json()["outcome"] == "CAPTURED"
        # (the in-process relay and the consumers run meanwhile: only the statements on payments count)
        on_payments = [x for x in run if re.search(r"\b(payments|payment_events)\b", x)]
        assert [statement.split()[0] for statement in on_payments] == ["SELECT", "WITH"], on_payments
        assert await payment_events(shop) == [("evt_once", "CAPTURED")]
        [captured] = await shop.events("payments", "payment.captured")
        assert (captured["paymentId"], captured["status"], captured["amount"], captured["late"]) == (
            order["paymentId"],
            "CAPTURED",
            str(TOTAL),
            False,
        )
        assert (await payment_row(shop, order["paymentId"]))["status"] == "CAPTURED"

    async def test_the_order_takes_a_capture_in_one_statement_with_its_processed_row(self, shop: Shop) -> None:
        (asha, shirt), order, body, headers = await _waiting_for_its_capture(shop, "evt_order_once")

        async with _statements_run([shop.platform.db("orders")]) as taken:
            response = await deliver(shop, body, headers)
            await shop.relay()
            run = await taken()

        assert response.json()["outcome"] == "CAPTURED"
        # (the relay's own statements on the outbox aside) the capture, then the confirmation
        on_orders = [x for x in run if re.search(r"\b(orders|order_items|orders_processed_events)\b", x)]
        assert [statement.split()[0] for statement in on_orders] == ["WITH", "WITH"], on_orders
        assert "orders_processed_events" in on_orders[0]
        assert "orders_outbox_events" in on_orders[1]
        confirmed = await order_of(shop, asha, order["orderId"])
        assert (confirmed["status"], confirmed["paymentStatus"], confirmed["paymentId"]) == (
            "CONFIRMED",
            "CAPTURED",
            order["paymentId"],
        )
        assert await stock(shop, shirt) == (4, 0, 4)
        [captured] = await shop.events("payments", "payment.captured")
        recorded = await shop.scalar(
            "orders", "SELECT count(*) FROM orders_processed_events WHERE consumer = 'orders.payment_captured'"
        )
        assert recorded == 1
        [confirmation] = await shop.events("orders", "order.confirmed")
        assert [(i["productId"], i["quantity"], i["unitPrice"]) for i in confirmation["items"]] == [
            (shirt["productId"], 1, "499.00")
        ]
        assert captured["orderId"] == order["orderId"]

    async def test_a_capture_delivered_again_changes_nothing(self, shop: Shop) -> None:
        (asha, shirt), order, body, headers = await _waiting_for_its_capture(shop, "evt_twice")
        await deliver(shop, body, headers)
        await shop.relay()
        [captured] = await shop.events("payments", "payment.captured")
        event_id = await shop.scalar(
            "payments", "SELECT event_id FROM payments_outbox_events WHERE type = 'payment.captured'"
        )
        event = Event(
            id=event_id, type="payment.captured", source="payments", occurred_at=shop.clock.now(), payload=captured
        )
        [subscription] = [s for s in shop.platform.subscriptions if s.consumer.name == "orders.payment_captured"]

        assert not await subscription.deliver(event)
        assert await subscription.deliver_many([event, event]) == 0

        assert (await order_of(shop, asha, order["orderId"]))["status"] == "CONFIRMED"
        assert await stock(shop, shirt) == (4, 0, 4)
        assert len(await shop.events("orders", "order.confirmed")) == 1


class TestExpiry:
    async def test_an_unpaid_order_fails_at_its_expiry_and_a_late_payment_is_refunded(self, shop: Shop) -> None:
        _, asha, shirt = await setup(shop)
        order = await gateway_order(shop, asha, shirt)
        payment = await payment_row(shop, order["paymentId"])

        # not yet expired: the worker leaves it waiting
        shop.clock.advance(minutes=14)
        assert await saga(shop.platform).resume() == 0
        # past its expiry: the payment is given up, the order FAILED, the unit back
        shop.clock.advance(minutes=1, seconds=1)
        assert await saga(shop.platform).resume() == 1
        await shop.relay()
        await relogin(shop, asha)
        failed = await order_of(shop, asha, order["orderId"])
        assert (failed["status"], failed["paymentStatus"], failed["failureReason"]) == (
            "FAILED",
            "FAILED",
            "PAYMENT_EXPIRED",
        )
        assert (await payment_row(shop, order["paymentId"]))[("status")] == "FAILED"
        assert await stock(shop, shirt) == (5, 0, 5)

        # when the gateway captures it after all
        late = await deliver(shop, *signed_event(shop, payment))

        # then the money goes back at once; the order stays FAILED
        assert late.json()["outcome"] == "CAPTURED_LATE"
        refunded = await order_of(shop, asha, order["orderId"])
        assert (refunded["status"], refunded["paymentStatus"]) == ("FAILED", "REFUNDED")
        assert await refunds(shop) == [(TOTAL, "SUCCEEDED", f"{order['orderId']}:all")]
        assert await stock(shop, shirt) == (5, 0, 5)


class TestCancelAndRefund:
    async def paid(self, shop: Shop) -> tuple[dict[str, str], Buyer, dict[str, Any], dict[str, Any]]:
        admin, asha, shirt = await setup(shop)
        order = await gateway_order(shop, asha, shirt)
        await deliver(shop, *signed_event(shop, await payment_row(shop, order["paymentId"])))
        assert (await order_of(shop, asha, order["orderId"]))["status"] == "CONFIRMED"
        return admin, asha, shirt, order

    async def test_cancelling_a_confirmed_order_refunds_it_and_restocks(self, shop: Shop) -> None:
        _, asha, shirt, order = await self.paid(shop)

        response = await shop.client.post(f"{ORDERS}/{order['orderId']}/cancel", headers=asha.auth)
        await shop.relay()

        assert response.status_code == 200, response.text
        cancelled = await order_of(shop, asha, order["orderId"])
        assert (cancelled["status"], cancelled["paymentStatus"], Decimal(str(cancelled["refundedAmount"]))) == (
            "CANCELLED",
            "REFUNDED",
            TOTAL,
        )
        assert await stock(shop, shirt) == (5, 0, 5)
        assert (await payment_row(shop, order["paymentId"]))["status"] == "REFUNDED"
        assert await refunds(shop) == [(TOTAL, "SUCCEEDED", f"{order['orderId']}:all")]
        # asking again refunds nothing more
        again = await shop.client.post(f"{ORDERS}/{order['orderId']}/cancel", headers=asha.auth)
        assert_error(again, 409, "ILLEGAL_STATUS_TRANSITION")
        assert len(await refunds(shop)) == 1

    async def test_an_admin_refunds_in_part_then_the_rest(self, shop: Shop) -> None:
        admin, _, shirt, order = await self.paid(shop)
        url = f"{ORDERS}/{order['orderId']}/refund"

        part = await shop.client.post(
            url, json={"amount": 100, "reason": "damaged"}, headers=admin | {"Idempotency-Key": "r1"}
        )
        replay = await shop.client.post(
            url, json={"amount": 100, "reason": "damaged"}, headers=admin | {"Idempotency-Key": "r1"}
        )
        await shop.relay()

        assert part.status_code == 200, part.text
        assert (part.json()["status"], part.json()["paymentStatus"], part.json()["refundedAmount"]) == (
            "CONFIRMED",
            "PARTIALLY_REFUNDED",
            100.0,
        )
        assert replay.json()["refundedAmount"] == 100.0
        too_much = await shop.client.post(url, json={"amount": 600}, headers=admin)
        assert_error(too_much, 409, "REFUND_EXCEEDS_CAPTURED")

        rest = await shop.client.post(url, headers=admin)
        await shop.relay()

        assert (rest.json()["status"], rest.json()["paymentStatus"], Decimal(str(rest.json()["refundedAmount"]))) == (
            "REFUNDED",
            "REFUNDED",
            TOTAL,
        )
        assert [(a, s) for a, s, _ in await refunds(shop)] == [
            (Decimal("100.00"), "SUCCEEDED"),
            (TOTAL - 100, "SUCCEEDED"),
        ]
        assert len(await shop.events("orders", "order.refunded")) == 1
        assert await stock(shop, shirt) == (4, 0, 4)  # the goods stay with the buyer
        nothing_left = await shop.client.post(url, headers=admin)
        assert_error(nothing_left, 409, "ILLEGAL_STATUS_TRANSITION")

    async def test_only_an_admin_refunds_and_not_cod_or_unpaid_orders(self, shop: Shop) -> None:
        admin, asha, shirt, order = await self.paid(shop)
        url = f"{ORDERS}/{order['orderId']}/refund"
        assert (await shop.client.post(url, headers=asha.auth)).status_code == 403
        assert (await shop.client.post(url)).status_code == 401
        assert_error(
            await shop.client.post(f"{ORDERS}/ord_20200101_0001/refund", headers=admin), 404, "ORDER_NOT_FOUND"
        )

        await fill(shop, asha, line(shirt, 1))
        cod = await shop.client.post(ORDERS, json=asha.body(), headers=asha.auth)
        assert_error(
            await shop.client.post(f"{ORDERS}/{cod.json()['orderId']}/refund", headers=admin), 409, "NOT_REFUNDABLE"
        )
        unpaid = await gateway_order(shop, asha, shirt)
        assert_error(
            await shop.client.post(f"{ORDERS}/{unpaid['orderId']}/refund", headers=admin),
            409,
            "ILLEGAL_STATUS_TRANSITION",
        )


class TestOwnership:
    async def test_another_buyer_cannot_see_pay_or_cancel_it(self, shop: Shop) -> None:
        _, asha, shirt = await setup(shop)
        order = await gateway_order(shop, asha, shirt)
        bo = await buyer(shop, "bo@example.com")
        before = await world(shop, asha)

        assert_error(
            await shop.client.get(f"/api/v1/payments/{order['paymentId']}", headers=bo.auth), 404, "PAYMENT_NOT_FOUND"
        )
        initiate = await shop.client.post(
            "/api/v1/payments/initiate", json={"orderId": order["orderId"]}, headers=bo.auth
        )
        assert_error(initiate, 404, "PAYMENT_NOT_FOUND")
        assert_error(
            await shop.client.post(f"{ORDERS}/{order['orderId']}/cancel", headers=bo.auth), 404, "ORDER_NOT_FOUND"
        )
        assert_error(await shop.client.get(f"{ORDERS}/{order['orderId']}", headers=bo.auth), 404, "ORDER_NOT_FOUND")
        assert await world(shop, asha) == before

    async def test_initiate_returns_the_orders_one_payment(self, shop: Shop) -> None:
        _, asha, shirt = await setup(shop)
        order = await gateway_order(shop, asha, shirt)

        answers = [
            await shop.client.post(
                "/api/v1/payments/initiate",
                json={
                    "orderId": order["orderId"],
                    "amount": float(TOTAL),
                    "currency": "INR",
                    "paymentProvider": "SANDBOX",
                },
                headers=asha.auth,
            )
            for _ in range(2)
        ]

        assert [a.status_code for a in answers] == [200, 200]
        assert [a.json() for a in answers] == [
            {"paymentId": order["paymentId"], "paymentUrl": order["paymentUrl"], "status": "PENDING"}
        ] * 2
        wrong = await shop.client.post(
            "/api/v1/payments/initiate", json={"orderId": order["orderId"], "amount": 1}, headers=asha.auth
        )
        assert_error(wrong, 409, "PAYMENT_MISMATCH")


class TestRestart:
    async def test_killed_between_capture_and_confirmation_confirms_once(self, shop: Shop) -> None:
        # given a captured payment whose event orders took in (saga CAPTURED), and then the
        # process died before it carried the order on
        _, asha, shirt = await setup(shop)
        order = await gateway_order(shop, asha, shirt)
        answer = await shop.client.post(
            "/api/v1/payments/webhook",
            content=(ev := signed_event(shop, await payment_row(shop, order["paymentId"])))[0],
            headers=ev[1],
        )
        assert answer.json()["outcome"] == "CAPTURED"
        (captured,) = await shop.events("payments", "payment.captured")
        event = Event(
            id="evt-1", type="payment.captured", source="payments", occurred_at=shop.clock.now(), payload=captured
        )
        async with shop.platform.db("orders").uow() as uow:
            await saga(shop.platform).on_captured(event, uow)
            uow._after_commit.clear()  # the process dies right after committing
            await uow.commit()
        assert (await order_stored(shop, order["orderId"]))["saga_step"] == "CAPTURED"

        # when the worker comes back
        shop.clock.advance(seconds=31)
        assert await saga(shop.platform).resume() == 1
        await shop.relay()  # and the event is delivered (again) as well

        # then the order is confirmed once, its unit sold once
        async with shop.platform.db("orders").engine.connect() as conn:
            status = (await conn.execute(select(Order.status).where(Order.order_id == order["orderId"]))).scalar()
        assert status == "CONFIRMED"
        assert len(await shop.events("orders", "order.confirmed")) == 1
        assert await stock(shop, shirt) == (4, 0, 4)
        assert await saga(shop.platform).resume(stalled_after=timedelta(0)) == 0
