"""StripeProvider against a fake Stripe API on a loopback port (pytest-httpserver), and
webhooks signed here the way Stripe signs them (`t=<time>,v1=<HMAC-SHA256 of "<t>.<body>">`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pytest_httpserver import HTTPServer

from tienda.payments.providers.base import (
    GatewayCheckout,
    GatewayError,
    InvalidSignature,
    PaymentProvider,
    PaymentRequest,
    WebhookEvent,
    WebhookKind,
)
from tienda.payments.providers.stripe import StripeProvider

SECRET_KEY = "sk_test_51HqLyjWDarjtT1zdp7dc"
WEBHOOK_SECRET = "whsec_test_stripe"
SESSION = "cs_test_a11YYufWQzNY63zpQ6QSNRQhkUpVph4WRmzW0zWJO2znZKdVujZ0N0S22u"
SESSION_URL = f"https://checkout.stripe.com/c/pay/{SESSION}"
INTENT = "pi_3MtwBwLkdIwHu7ix28a3tqPa"
OUR_PAYMENT = "pay_01HZX3J4K5"
ORDER = "ord_20240611_0001"
RETURN_URL = f"https://shop.example.com/orders/{ORDER}"
DEFAULT_RETURN = "https://shop.example.com/account/orders"

# The SDK's httpx client posts its form as `data=<bytes>`, which httpx deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
async def provider(httpserver: HTTPServer) -> AsyncIterator[StripeProvider]:
    provider = StripeProvider(
        SECRET_KEY,
        WEBHOOK_SECRET,
        api_base=httpserver.url_for("/"),
        default_return_url=DEFAULT_RETURN,
        timeout_seconds=5,
        max_network_retries=0,
    )
    yield provider
    await provider.aclose()


def payment_request(**overrides: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "payment_id": OUR_PAYMENT,
        "order_id": ORDER,
        "amount": Decimal("49.99"),
        "currency": "USD",
        "description": f"Order {ORDER}",
        "customer_email": "asha@example.com",
        "return_url": RETURN_URL,
    }
    fields.update(overrides)
    return PaymentRequest(**fields)


def session_object(**overrides: Any) -> dict[str, Any]:
    """A Checkout Session as the API returns it and as `checkout.session.*` events carry it."""
    session = {
        "id": SESSION,
        "object": "checkout.session",
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": 4999,
        "amount_total": 4999,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": RETURN_URL,
        "client_reference_id": OUR_PAYMENT,
        "created": 1679600215,
        "currency": "usd",
        "customer": None,
        "customer_creation": "if_required",
        "customer_details": None,
        "customer_email": "asha@example.com",
        "expires_at": 1679686615,
        "livemode": False,
        "metadata": {"order_id": ORDER, "payment_id": OUR_PAYMENT},
        "mode": "payment",
        "payment_intent": None,
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "status": "open",
        "success_url": RETURN_URL,
        "url": SESSION_URL,
    }
    session.update(overrides)
    return session


def charge_object(**overrides: Any) -> dict[str, Any]:
    charge = {
        "id": "ch_3MtwBwLkdIwHu7ix28a3tqPa",
        "object": "charge",
        "amount": 4999,
        "amount_captured": 4999,
        "amount_refunded": 2000,
        "captured": True,
        "currency": "usd",
        "livemode": False,
        "metadata": {"order_id": ORDER, "payment_id": OUR_PAYMENT},
        "paid": True,
        "payment_intent": INTENT,
        "refunded": False,
        "status": "succeeded",
    }
    charge.update(overrides)
    return charge


def refund_object() -> dict[str, Any]:
    return {
        "id": "re_1Nispe2eZvKYlo2Cd31jOCgZ",
        "object": "refund",
        "amount": 2000,
        "balance_transaction": "txn_1Nispe2eZvKYlo2CYezqFhEx",
        "charge": "ch_3MtwBwLkdIwHu7ix28a3tqPa",
        "created": 1692942318,
        "currency": "usd",
        "metadata": {"refund_id": "rf_01HZX3J4K5"},
        "payment_intent": INTENT,
        "reason": None,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def stripe_error(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **extra}}


def event(event_type: str, obj: dict[str, Any], *, event_id: str = "evt_1NG8Du2eZvKYlo2CUI79vXWy") -> bytes:
    body = {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1686089970,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    return json.dumps(body).encode()


def sign(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={timestamp},v1={mac}"}


def form(sent_body: bytes) -> dict[str, str]:
    pairs = parse_qsl(sent_body.decode(), keep_blank_values=True, strict_parsing=True)
    assert len(pairs) == len(dict(pairs)), "no field sent twice"
    return dict(pairs)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_it_is_a_payment_provider() -> None:
    typed: type[PaymentProvider] = StripeProvider
    assert (typed.name, typed.signature_header) == ("stripe", "Stripe-Signature")


class TestCreateCheckout:
    async def test_creates_a_checkout_session_in_cents_named_by_our_payment(
        self, provider: StripeProvider, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request("/v1/checkout/sessions", method="POST").respond_with_json(session_object())

        checkout = await provider.create_checkout(payment_request())

        assert checkout == GatewayCheckout(reference=SESSION, url=SESSION_URL)
        [(sent, _)] = httpserver.log
        assert sent.headers["Authorization"] == f"Bearer {SECRET_KEY}"
        assert sent.headers["Idempotency-Key"] == f"checkout-{OUR_PAYMENT}"
        assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert form(sent.get_data()) == {
            "mode": "payment",
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": "usd",
            "line_items[0][price_data][unit_amount]": "4999",
            "line_items[0][price_data][product_data][name]": f"Order {ORDER}",
            "client_reference_id": OUR_PAYMENT,
            "metadata[order_id]": ORDER,
            "metadata[payment_id]": OUR_PAYMENT,
            "payment_intent_data[metadata][order_id]": ORDER,
            "payment_intent_data[metadata][payment_id]": OUR_PAYMENT,
            "success_url": RETURN_URL,
            "cancel_url": RETURN_URL,
            "customer_email": "asha@example.com",
        }

    async def test_without_a_return_url_the_default_one_is_used(
        self, provider: StripeProvider, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request("/v1/checkout/sessions", method="POST").respond_with_json(session_object())

        await provider.create_checkout(
            payment_request(return_url=None, customer_email=None, currency="JPY", amount=500)
        )

        sent = form(httpserver.log[0][0].get_data())
        assert (sent["success_url"], sent["cancel_url"]) == (DEFAULT_RETURN, DEFAULT_RETURN)
        assert (sent["line_items[0][price_data][currency]"], sent["line_items[0][price_data][unit_amount]"]) == (
            "jpy",
            "500",
        )
        assert "customer_email" not in sent

    async def test_a_refused_session_is_a_gateway_error(self, provider: StripeProvider, httpserver: HTTPServer) -> None:
        httpserver.expect_oneshot_request("/v1/checkout/sessions", method="POST").respond_with_json(
            stripe_error(
                "invalid_request_error",
                "The Checkout Session's total amount due must add up to at least $0.50 usd",
                param="line_items",
            ),
            status=400,
        )

        with pytest.raises(GatewayError, match="at least"):
            await provider.create_checkout(payment_request(amount=Decimal("0.10")))

    async def test_a_wrong_api_key_is_a_gateway_error(self, provider: StripeProvider, httpserver: HTTPServer) -> None:
        httpserver.expect_oneshot_request("/v1/checkout/sessions", method="POST").respond_with_json(
            stripe_error("invalid_request_error", "Invalid API Key provided: sk_test_****"), status=401
        )

        with pytest.raises(GatewayError, match="Invalid API Key"):
            await provider.create_checkout(payment_request())

    async def test_a_server_error_is_a_gateway_error(self, provider: StripeProvider, httpserver: HTTPServer) -> None:
        httpserver.expect_oneshot_request("/v1/checkout/sessions", method="POST").respond_with_json(
            stripe_error("api_error", "Something went wrong on Stripe's end."), status=500
        )

        with pytest.raises(GatewayError, match="went wrong"):
            await provider.create_checkout(payment_request())

    async def test_a_non_json_error_page_is_a_gateway_error(
        self, provider: StripeProvider, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request("/v1/checkout/sessions", method="POST").respond_with_data(
            "<html>Bad Gateway</html>", status=502, content_type="text/html"
        )

        with pytest.raises(GatewayError):
            await provider.create_checkout(payment_request())

    async def test_an_unreachable_gateway_is_a_gateway_error(self) -> None:
        unreachable = StripeProvider(
            SECRET_KEY, WEBHOOK_SECRET, api_base=f"http://127.0.0.1:{closed_port()}", max_network_retries=0
        )
        try:
            with pytest.raises(GatewayError, match="APIConnectionError"):
                await unreachable.create_checkout(payment_request())
        finally:
            await unreachable.aclose()


class TestRefund:
    async def test_refunds_the_payment_intent_in_cents_under_our_refund_id(
        self, provider: StripeProvider, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(refund_object())

        refund_reference = await provider.refund(
            transaction_id=INTENT, amount=Decimal("20.00"), currency="USD", refund_id="rf_01HZX3J4K5"
        )

        assert refund_reference == "re_1Nispe2eZvKYlo2Cd31jOCgZ"
        [(sent, _)] = httpserver.log
        assert sent.headers["Authorization"] == f"Bearer {SECRET_KEY}"
        assert sent.headers["Idempotency-Key"] == "rf_01HZX3J4K5"
        assert form(sent.get_data()) == {
            "payment_intent": INTENT,
            "amount": "2000",
            "metadata[refund_id]": "rf_01HZX3J4K5",
        }

    async def test_a_retried_refund_carries_the_same_idempotency_key(self, httpserver: HTTPServer) -> None:
        retrying = StripeProvider(SECRET_KEY, WEBHOOK_SECRET, api_base=httpserver.url_for("/"), max_network_retries=1)
        httpserver.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(
            stripe_error("api_error", "Something went wrong on Stripe's end."), status=500
        )
        httpserver.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(refund_object())
        try:
            refund_reference = await retrying.refund(
                transaction_id=INTENT, amount=Decimal("20.00"), currency="USD", refund_id="rf_01HZX3J4K5"
            )
        finally:
            await retrying.aclose()

        assert refund_reference == "re_1Nispe2eZvKYlo2Cd31jOCgZ"
        assert [sent.headers["Idempotency-Key"] for sent, _ in httpserver.log] == ["rf_01HZX3J4K5", "rf_01HZX3J4K5"]

    async def test_a_refused_refund_is_a_gateway_error(self, provider: StripeProvider, httpserver: HTTPServer) -> None:
        httpserver.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(
            stripe_error(
                "invalid_request_error",
                "Refund amount ($60.00) is greater than unrefunded amount on charge ($49.99)",
                param="amount",
            ),
            status=400,
        )

        with pytest.raises(GatewayError, match="greater than unrefunded amount"):
            await provider.refund(transaction_id=INTENT, amount=Decimal("60.00"), currency="USD", refund_id="rf_1")


class TestWebhookEvents:
    def test_a_paid_completed_session_is_captured_with_its_payment_intent(self, provider: StripeProvider) -> None:
        paid = session_object(status="complete", payment_status="paid", payment_intent=INTENT, url=None)
        body = event("checkout.session.completed", paid, event_id="evt_completed")

        parsed = provider.verify_webhook(sign(body), body)

        assert parsed == WebhookEvent(
            event_id="evt_completed",
            kind=WebhookKind.CAPTURED,
            raw_type="checkout.session.completed",
            reference=SESSION,
            payment_id=OUR_PAYMENT,
            transaction_id=INTENT,
            amount=Decimal("49.99"),
            currency="USD",
        )

    def test_headers_are_found_whatever_their_case(self, provider: StripeProvider) -> None:
        paid = session_object(status="complete", payment_status="paid", payment_intent=INTENT)
        body = event("checkout.session.completed", paid)

        parsed = provider.verify_webhook({"Stripe-Signature": sign(body)["stripe-signature"]}, body)

        assert parsed.kind == WebhookKind.CAPTURED

    def test_a_completed_session_still_awaiting_a_delayed_payment_is_ignored(self, provider: StripeProvider) -> None:
        unpaid = session_object(status="complete", payment_status="unpaid", payment_intent=INTENT)
        body = event("checkout.session.completed", unpaid, event_id="evt_unpaid")

        parsed = provider.verify_webhook(sign(body), body)

        assert parsed == WebhookEvent(
            event_id="evt_unpaid", kind=WebhookKind.IGNORED, raw_type="checkout.session.completed"
        )

    def test_a_delayed_payment_that_succeeds_is_captured(self, provider: StripeProvider) -> None:
        paid = session_object(status="complete", payment_status="paid", payment_intent=INTENT, amount_total=500)
        body = event("checkout.session.async_payment_succeeded", paid, event_id="evt_async_ok")

        parsed = provider.verify_webhook(sign(body), body)

        assert parsed == WebhookEvent(
            event_id="evt_async_ok",
            kind=WebhookKind.CAPTURED,
            raw_type="checkout.session.async_payment_succeeded",
            reference=SESSION,
            payment_id=OUR_PAYMENT,
            transaction_id=INTENT,
            amount=Decimal("5.00"),
            currency="USD",
        )

    def test_an_expired_session_fails(self, provider: StripeProvider) -> None:
        expired = session_object(status="expired", url=None)
        body = event("checkout.session.expired", expired, event_id="evt_expired")

        parsed = provider.verify_webhook(sign(body), body)

        assert parsed == WebhookEvent(
            event_id="evt_expired",
            kind=WebhookKind.FAILED,
            raw_type="checkout.session.expired",
            reference=SESSION,
            payment_id=OUR_PAYMENT,
            reason="checkout session expired",
        )

    def test_a_delayed_payment_that_fails_fails(self, provider: StripeProvider) -> None:
        failed = session_object(status="complete", payment_status="unpaid", payment_intent=INTENT)
        body = event("checkout.session.async_payment_failed", failed, event_id="evt_async_fail")

        parsed = provider.verify_webhook(sign(body), body)

        assert parsed == WebhookEvent(
            event_id="evt_async_fail",
            kind=WebhookKind.FAILED,
            raw_type="checkout.session.async_payment_failed",
            reference=SESSION,
            payment_id=OUR_PAYMENT,
            transaction_id=INTENT,
            reason="asynchronous payment failed",
        )

    def test_a_refunded_charge_is_refunded_with_its_latest_refund(self, provider: StripeProvider) -> None:
        refunds = {
            "object": "list",
            "data": [refund_object(), {**refund_object(), "id": "re_older"}],
            "has_more": False,
            "url": "/v1/charges/ch_3MtwBwLkdIwHu7ix28a3tqPa/refunds",
        }
        body = event("charge.refunded", charge_object(refunds=refunds), event_id="evt_refunded")

        parsed = provider.verify_webhook(sign(body), body)

        assert parsed == WebhookEvent(
            event_id="evt_refunded",
            kind=WebhookKind.REFUNDED,
            raw_type="charge.refunded",
            payment_id=OUR_PAYMENT,
            transaction_id=INTENT,
            refunded_total=Decimal("20.00"),
            currency="USD",
            refund_reference="re_1Nispe2eZvKYlo2Cd31jOCgZ",
        )

    def test_a_refunded_charge_without_its_refunds_has_no_refund_reference(self, provider: StripeProvider) -> None:
        body = event("charge.refunded", charge_object(amount_refunded=4999, refunded=True, metadata={}))

        parsed = provider.verify_webhook(sign(body), body)

        assert (
            parsed.kind,
            parsed.refunded_total,
            parsed.payment_id,
            parsed.refund_reference,
            parsed.transaction_id,
        ) == (
            WebhookKind.REFUNDED,
            Decimal("49.99"),
            None,
            None,
            INTENT,
        )

    def test_other_events_are_ignored(self, provider: StripeProvider) -> None:
        body = event("payment_intent.succeeded", {"id": INTENT, "object": "payment_intent"}, event_id="evt_pi")

        parsed = provider.verify_webhook(sign(body), body)

        assert parsed == WebhookEvent(event_id="evt_pi", kind=WebhookKind.IGNORED, raw_type="payment_intent.succeeded")


class TestWebhookSignature:
    def body(self) -> bytes:
        return event(
            "checkout.session.completed",
            session_object(status="complete", payment_status="paid", payment_intent=INTENT),
        )

    def test_a_tampered_body_is_refused(self, provider: StripeProvider) -> None:
        body = self.body()
        headers = sign(body)

        with pytest.raises(InvalidSignature):
            provider.verify_webhook(headers, body.replace(b"4999", b"99"))

    def test_a_body_signed_with_another_secret_is_refused(self, provider: StripeProvider) -> None:
        body = self.body()

        with pytest.raises(InvalidSignature):
            provider.verify_webhook(sign(body, secret="whsec_someone_else"), body)

    @pytest.mark.parametrize("headers", [{}, {"stripe-signature": ""}])
    def test_a_missing_signature_is_refused(self, provider: StripeProvider, headers: dict[str, str]) -> None:
        with pytest.raises(InvalidSignature, match="missing"):
            provider.verify_webhook(headers, self.body())

    def test_a_signature_older_than_the_tolerance_is_refused(self, provider: StripeProvider) -> None:
        body = self.body()

        with pytest.raises(InvalidSignature, match="tolerance"):
            provider.verify_webhook(sign(body, timestamp=int(time.time()) - 301), body)

    def test_a_signature_within_the_tolerance_is_accepted(self, provider: StripeProvider) -> None:
        body = self.body()

        parsed = provider.verify_webhook(sign(body, timestamp=int(time.time()) - 240), body)

        assert parsed.kind == WebhookKind.CAPTURED

    @pytest.mark.parametrize(
        "header",
        ["garbage", "t=abc,v1=00", f"t={int(time.time())}", "t=1,v1=é"],
        ids=["garbage", "bad-timestamp", "no-signature", "non-ascii"],
    )
    def test_a_malformed_signature_header_is_refused(self, provider: StripeProvider, header: str) -> None:
        with pytest.raises(InvalidSignature):
            provider.verify_webhook({"stripe-signature": header}, self.body())

    @pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b'{"id": "evt_1", "object": "event", "type": "x"}'])
    def test_a_signed_body_that_is_not_a_stripe_event_is_refused(self, provider: StripeProvider, body: bytes) -> None:
        with pytest.raises(InvalidSignature):
            provider.verify_webhook(sign(body), body)
