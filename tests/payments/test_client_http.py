"""The payments client over HTTP: the payments service alone on its own database
(tests/services.py), asked by a process that does not run it (as the orders service is when
split). Two such services: one on the built-in sandbox gateway, one on Stripe, whose API (a
third party) is faked at the HTTP boundary so that it can refuse. Answers and refusals are
those of the in-process client on the same database."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.payments.test_stripe import WEBHOOK_SECRET, event, session_object, sign, stripe_error
from tests.services import Service, caller, serve
from tienda.payments.client import (
    HttpPaymentsClient,
    InProcessPaymentsClient,
    NothingToRefund,
    PaymentDeclined,
    PaymentInfo,
    RefundFailed,
    RefundRefused,
    payments_client,
)
from tienda.payments.module import MODULE as PAYMENTS
from tienda.platform.errors import ErrorDetail
from tienda.platform.http import Refused
from tienda.platform.runtime import Platform

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

AMOUNT = Decimal("637.82")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    served = serve([PAYMENTS], tmp_path_factory.mktemp("payments-sandbox"))
    yield served
    served.stop()


@pytest.fixture(scope="module")
def stripe(tmp_path_factory: pytest.TempPathFactory, make_httpserver: HTTPServer) -> Iterator[Service]:
    served = serve(
        [PAYMENTS],
        tmp_path_factory.mktemp("payments-stripe"),
        payment_provider="stripe",
        sandbox_payments=False,
        stripe_secret_key="sk_test_split",
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=make_httpserver.url_for("/"),
    )
    yield served
    served.stop()


async def _client(tmp_path: Path, service: Service) -> tuple[Platform, HttpPaymentsClient]:
    platform = caller(tmp_path / f"orders-{uuid.uuid4().hex[:6]}", payments_url=service.url)
    client = payments_client(platform)
    assert isinstance(client, HttpPaymentsClient)
    return platform, client


@pytest.fixture
async def payments(tmp_path: Path, sandbox: Service) -> AsyncIterator[HttpPaymentsClient]:
    platform, client = await _client(tmp_path, sandbox)
    yield client
    await platform.close()


@pytest.fixture
async def local(sandbox: Service) -> AsyncIterator[InProcessPaymentsClient]:
    platform = sandbox.local()
    yield InProcessPaymentsClient(platform)
    await platform.close()


def order() -> str:
    return f"ord_20260101_{uuid.uuid4().hex[:6]}"


async def initiate(client: HttpPaymentsClient | InProcessPaymentsClient, order_id: str, **changes: Any) -> PaymentInfo:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "user_id": "u_asha",
        "amount": AMOUNT,
        "currency": "INR",
        "customer_email": "asha@example.com",
        **changes,
    }
    return await client.initiate(**fields)


async def approve(sandbox: Service, payment_id: str) -> None:
    """The buyer's Approve on the sandbox gateway's page: it captures the payment."""
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        response = await client.post(f"/api/v1/payments/sandbox/{payment_id}/approve")
    assert response.status_code == 303, response.text


async def captured(sandbox: Service, payments: HttpPaymentsClient) -> str:
    order_id = order()
    payment = await initiate(payments, order_id)
    await approve(sandbox, payment.payment_id)
    return order_id


class TestInitiate:
    async def test_opens_the_orders_payment_once_and_answers_it_as_the_in_process_client_does(
        self, payments: HttpPaymentsClient, local: InProcessPaymentsClient
    ) -> None:
        order_id = order()

        first = await initiate(payments, order_id)
        again = await initiate(payments, order_id)

        assert first.payment_id.startswith("pay_")
        assert first.status == "PENDING"
        assert first.payment_url is not None
        assert first.payment_url.endswith(f"/api/v1/payments/sandbox/{first.payment_id}")
        assert again == first == await initiate(local, order_id)

    async def test_another_amount_for_the_same_order_is_the_same_conflict_as_in_process(
        self, payments: HttpPaymentsClient
    ) -> None:
        order_id = order()
        await initiate(payments, order_id)

        with pytest.raises(Refused) as refused:
            await initiate(payments, order_id, amount=Decimal("1.00"))

        assert (refused.value.status, refused.value.code) == (409, "PAYMENT_MISMATCH")
        assert refused.value.details == [ErrorDetail(field="body.amount", message="the order's payment is 637.82 INR")]

    async def test_a_gateway_that_cannot_open_it_is_payment_declined(
        self, tmp_path: Path, stripe: Service, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_json(
            stripe_error("api_error", "Stripe is having a moment"), status=400
        )
        platform, payments = await _client(tmp_path, stripe)
        here = stripe.local()
        try:
            with pytest.raises(PaymentDeclined) as over_http:
                await initiate(payments, order())
            with pytest.raises(PaymentDeclined) as in_process:
                await initiate(InProcessPaymentsClient(here), order())
        finally:
            await platform.close()
            await here.close()

        assert str(over_http.value) == str(in_process.value)
        assert "gateway" in str(over_http.value)


class TestRefund:
    async def test_refunds_once_per_request_key_and_answers_the_refunded_total(
        self, sandbox: Service, payments: HttpPaymentsClient
    ) -> None:
        order_id = await captured(sandbox, payments)

        part = await payments.refund(order_id=order_id, amount=Decimal("100.00"), request_key="k1", reason="damaged")
        same = await payments.refund(order_id=order_id, amount=Decimal("100.00"), request_key="k1", reason="damaged")
        rest = await payments.refund(order_id=order_id, amount=None, request_key="k2", reason=None)

        assert (part, same, rest) == (Decimal("100.00"), Decimal("100.00"), AMOUNT)
        assert str(rest) == "637.82"
        with pytest.raises(NothingToRefund):
            await payments.refund(order_id=order_id, amount=None, request_key="k3", reason=None)

    async def test_more_than_is_left_is_refused_with_the_details_as_in_process(
        self, sandbox: Service, payments: HttpPaymentsClient, local: InProcessPaymentsClient
    ) -> None:
        order_id = await captured(sandbox, payments)
        await payments.refund(order_id=order_id, amount=Decimal("600.00"), request_key="k1", reason=None)

        with pytest.raises(RefundRefused) as over_http:
            await payments.refund(order_id=order_id, amount=Decimal("40.00"), request_key="k2", reason=None)
        with pytest.raises(RefundRefused) as in_process:
            await local.refund(order_id=order_id, amount=Decimal("40.00"), request_key="k3", reason=None)

        assert str(over_http.value) == str(in_process.value)
        assert over_http.value.details == in_process.value.details
        assert over_http.value.details == [ErrorDetail(field="body.amount", message="at most 37.82 can be refunded")]

    async def test_an_order_without_a_captured_payment_has_nothing_to_refund(
        self, payments: HttpPaymentsClient, local: InProcessPaymentsClient
    ) -> None:
        pending = order()
        await initiate(payments, pending)

        for order_id in (pending, order()):
            with pytest.raises(NothingToRefund) as over_http:
                await payments.refund(order_id=order_id, amount=None, request_key="k", reason=None)
            with pytest.raises(NothingToRefund) as in_process:
                await local.refund(order_id=order_id, amount=None, request_key="k", reason=None)
            assert str(over_http.value) == str(in_process.value)

    async def test_a_gateway_that_does_not_take_the_refund_is_refund_failed(
        self, tmp_path: Path, stripe: Service, httpserver: HTTPServer
    ) -> None:
        def session(request: Request) -> Response:
            reference = request.form["client_reference_id"]
            body = session_object(id=f"cs_test_{reference}", url=f"https://checkout.stripe.com/c/pay/{reference}")
            return Response(json.dumps(body), content_type="application/json")

        httpserver.expect_request("/v1/checkout/sessions", method="POST").respond_with_handler(session)
        httpserver.expect_request("/v1/refunds", method="POST").respond_with_json(
            stripe_error("invalid_request_error", "Charge has been disputed"), status=400
        )
        platform, payments = await _client(tmp_path, stripe)
        try:
            order_id = order()
            payment = await initiate(payments, order_id)
            paid = event(
                "checkout.session.completed",
                session_object(
                    id=f"cs_test_{payment.payment_id}",
                    client_reference_id=payment.payment_id,
                    amount_total=63782,
                    currency="inr",
                    payment_status="paid",
                    status="complete",
                    payment_intent="pi_test_split",
                    metadata={"order_id": order_id, "payment_id": payment.payment_id},
                ),
                event_id=f"evt_{uuid.uuid4().hex}",
            )
            async with httpx.AsyncClient(base_url=stripe.url) as gateway:
                delivered = await gateway.post("/api/v1/payments/webhook", content=paid, headers=sign(paid))
            assert delivered.json()["outcome"] == "CAPTURED", delivered.text

            with pytest.raises(RefundFailed) as failed:
                await payments.refund(order_id=order_id, amount=None, request_key="k1", reason=None)
        finally:
            await platform.close()

        assert "gateway" in str(failed.value)


class TestExpire:
    async def test_a_pending_payment_fails_and_a_captured_one_stays_captured(
        self, sandbox: Service, payments: HttpPaymentsClient, local: InProcessPaymentsClient
    ) -> None:
        pending = order()
        await initiate(payments, pending)
        paid = await captured(sandbox, payments)

        assert await payments.expire(order_id=pending) == "FAILED"
        assert await payments.expire(order_id=pending) == "FAILED"
        assert await payments.expire(order_id=paid) == "CAPTURED"
        assert await local.expire(order_id=paid) == "CAPTURED"
        assert await payments.expire(order_id=order()) is None
