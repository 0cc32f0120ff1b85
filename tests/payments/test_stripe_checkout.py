"""A shop configured for Stripe (settings only), its API faked at the HTTP boundary: the order's
payment is a Checkout Session whose URL the buyer gets, Stripe's signed
`checkout.session.completed` confirms the order, and a cancel refunds through Stripe's API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.carts.support import line, product_for_sale
from tests.conftest import Shop
from tests.orders.support import ORDERS, buyer, fill, rebuilt, stock
from tests.payments.support import payment_row
from tests.payments.test_stripe import WEBHOOK_SECRET, event, session_object, sign
from tienda.payments.client import InProcessPaymentsClient

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
async def stripe_shop(shop: Shop, httpserver: HTTPServer) -> AsyncIterator[Shop]:
    async with rebuilt(
        shop,
        payment_provider="stripe",
        sandbox_payments=False,
        stripe_secret_key="sk_test_shop",
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=httpserver.url_for("/"),
        payment_return_url="https://shop.example.com/orders",
    ) as configured:
        yield configured


def fake_stripe(httpserver: HTTPServer) -> list[dict[str, Any]]:
    """Stripe's two calls we make, answered as Stripe does; what was sent, in order."""
    sent: list[dict[str, Any]] = []

    def session(request: Request) -> Response:
        form = dict(request.form)
        sent.append({"path": request.path, "form": form, "key": request.headers.get("Idempotency-Key")})
        body = session_object(
            id=f"cs_test_{form['client_reference_id']}",
            url=f"https://checkout.stripe.com/c/pay/cs_test_{form['client_reference_id']}",
            client_reference_id=form["client_reference_id"],
            amount_total=int(form["line_items[0][price_data][unit_amount]"]),
            currency=form["line_items[0][price_data][currency]"],
        )
        return Response(json.dumps(body), content_type="application/json")

    def refund(request: Request) -> Response:
        form = dict(request.form)
        sent.append({"path": request.path, "form": form, "key": request.headers.get("Idempotency-Key")})
        body = {"id": "re_test_1", "object": "refund", "amount": int(form["amount"]), "status": "succeeded"}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_handler(session)
    httpserver.expect_request("/v1/refunds", method="POST").respond_with_handler(refund)
    return sent


@pytest.fixture
def backend() -> str:
    return "sqlite"


async def test_a_stripe_checkout_is_confirmed_by_stripes_webhook_and_refunded_on_cancel(
    stripe_shop: Shop, httpserver: HTTPServer
) -> None:
    shop = stripe_shop
    sent = fake_stripe(httpserver)
    _, admin = await shop.admin()
    shirt = await product_for_sale(shop, admin, price=499, stock=5)
    asha = await buyer(shop)
    await fill(shop, asha, line(shirt, 1))

    # when she checks out, the order's payment is a Stripe Checkout Session
    placed = await shop.client.post(ORDERS, json=asha.body(paymentMethod="PAYMENT_GATEWAY"), headers=asha.auth)

    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["paymentUrl"] == f"https://checkout.stripe.com/c/pay/cs_test_{order['paymentId']}"
    (created,) = sent
    assert created["path"] == "/v1/checkout/sessions"
    assert created["form"]["line_items[0][price_data][unit_amount]"] == "63782"  # 637.82 INR in paise
    assert created["form"]["line_items[0][price_data][currency]"] == "inr"
    assert created["form"]["metadata[order_id]"] == order["orderId"]
    assert created["form"]["success_url"] == "https://shop.example.com/orders"
    assert created["key"] == f"checkout-{order['paymentId']}"

    # and opening the order's payment again (a resumed checkout, a retried internal call)
    # gives the same one, without a second session at Stripe
    again = await InProcessPaymentsClient(shop.platform).initiate(
        order_id=order["orderId"], user_id=asha.user_id, amount=Decimal("637.82"), currency="INR", customer_email=None
    )
    assert (again.payment_id, again.payment_url) == (order["paymentId"], order["paymentUrl"])
    assert len(sent) == 1

    # when Stripe reports the session paid
    completed = event(
        "checkout.session.completed",
        session_object(
            id=f"cs_test_{order['paymentId']}",
            client_reference_id=order["paymentId"],
            amount_total=63782,
            currency="inr",
            payment_status="paid",
            status="complete",
            payment_intent="pi_test_shop",
        ),
        event_id="evt_shop_completed",
    )
    answer = await shop.client.post("/api/v1/payments/webhook", content=completed, headers=sign(completed))
    await shop.relay()

    # then the order is confirmed and the payment remembers Stripe's PaymentIntent
    assert (answer.status_code, answer.json()["outcome"]) == (200, "CAPTURED")
    got = await shop.client.get(f"{ORDERS}/{order['orderId']}", headers=asha.auth)
    assert (got.json()["status"], got.json()["paymentStatus"]) == ("CONFIRMED", "CAPTURED")
    payment = await payment_row(shop, order["paymentId"])
    assert (payment["payment_provider"], payment["provider_transaction_id"]) == ("stripe", "pi_test_shop")
    assert await stock(shop, shirt) == (4, 0, 4)

    # when she cancels, Stripe refunds the PaymentIntent in full, once
    cancelled = await shop.client.post(f"{ORDERS}/{order['orderId']}/cancel", headers=asha.auth)
    await shop.relay()

    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["paymentStatus"]) == ("CANCELLED", "REFUNDED")
    assert Decimal(str(cancelled.json()["refundedAmount"])) == Decimal("637.82")
    refund = sent[1]
    assert (refund["path"], refund["form"]["payment_intent"], refund["form"]["amount"]) == (
        "/v1/refunds",
        "pi_test_shop",
        "63782",
    )
    assert refund["key"].startswith("rf_")
    assert len(sent) == 2
    assert await stock(shop, shirt) == (5, 0, 5)
    # and the sandbox is not served by a shop that does not enable it
    assert (await shop.client.get(f"/api/v1/payments/sandbox/{order['paymentId']}")).status_code == 404
