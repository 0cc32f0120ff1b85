"""RazorpayProvider against a fake Razorpay API on a loopback port (pytest-httpserver), and
webhooks signed here the way Razorpay signs them (hex HMAC-SHA256 of the raw body)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from decimal import Decimal
from typing import Any

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
from tienda.payments.providers.razorpay import RazorpayProvider

KEY_ID = "rzp_test_1DP5mmOlF5G5ag"
KEY_SECRET = "thisisasecret"
WEBHOOK_SECRET = "whsec_razorpay_test"
LINK_ID = "plink_Qb2gHrKr01Maky"
RZP_PAYMENT = "pay_Qb2gYRc7dxedX8"
OUR_PAYMENT = "pay_01HZX3J4K5"
ORDER = "ord_20240611_0001"


@pytest.fixture
def provider(httpserver: HTTPServer) -> RazorpayProvider:
    return RazorpayProvider(KEY_ID, KEY_SECRET, WEBHOOK_SECRET, api_base=httpserver.url_for("/"), timeout_seconds=5)


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(body: bytes, *, event_id: str = "evt_rzp_1", secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    # Lower-case, as the protocol promises; one test below checks the original case works too.
    return {"x-razorpay-signature": sign(body, secret), "x-razorpay-event-id": event_id}


def error_body(code: str, description: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "description": description,
            "source": "business",
            "step": "payment_initiation",
            "reason": "input_validation_failed",
            "metadata": {},
        }
    }


def payment_request(**overrides: Any) -> PaymentRequest:
    fields: dict[str, Any] = {
        "payment_id": OUR_PAYMENT,
        "order_id": ORDER,
        "amount": Decimal("1499.50"),
        "currency": "INR",
        "description": f"Order {ORDER}",
        "customer_email": "asha@example.com",
        "return_url": f"https://shop.example.com/orders/{ORDER}",
    }
    fields.update(overrides)
    return PaymentRequest(**fields)


def link_entity(*, status: str = "created", amount_paid: int = 0) -> dict[str, Any]:
    """A Payment Link as the API returns it and as `payment_link.*` webhooks carry it."""
    return {
        "accept_partial": False,
        "amount": 149950,
        "amount_paid": amount_paid,
        "callback_method": "get",
        "callback_url": f"https://shop.example.com/orders/{ORDER}",
        "cancelled_at": 0,
        "created_at": 1748586679,
        "currency": "INR",
        "customer": {"email": "asha@example.com"},
        "description": f"Order {ORDER}",
        "expire_by": 0,
        "expired_at": 0,
        "first_min_partial_amount": 0,
        "id": LINK_ID,
        "notes": {"order_id": ORDER, "payment_id": OUR_PAYMENT},
        "notify": {"email": False, "sms": False, "whatsapp": False},
        "payments": None,
        "reference_id": OUR_PAYMENT,
        "reminder_enable": False,
        "reminders": [],
        "short_url": "https://rzp.io/rzp/S12PdyW",
        "status": status,
        "updated_at": 1748586679,
        "upi_link": False,
        "user_id": "",
        "whatsapp_link": False,
    }


def payment_entity(*, status: str = "captured", notes: Any = None, **overrides: Any) -> dict[str, Any]:
    entity = {
        "id": RZP_PAYMENT,
        "entity": "payment",
        "amount": 149950,
        "currency": "INR",
        "status": status,
        "order_id": "order_Qb2gOAUzSm5zpv",
        "invoice_id": None,
        "international": False,
        "method": "upi",
        "amount_refunded": 0,
        "refund_status": None,
        "captured": status == "captured",
        "description": "#Qb2gHrKr01Maky",
        "email": "asha@example.com",
        "contact": "+919000090000",
        # Razorpay copies the link's notes onto the payment; an empty set comes as [].
        "notes": {"order_id": ORDER, "payment_id": OUR_PAYMENT} if notes is None else notes,
        "fee": 354,
        "tax": 54,
        "error_code": None,
        "error_description": None,
        "error_source": None,
        "error_step": None,
        "error_reason": None,
        "created_at": 1748586694,
    }
    entity.update(overrides)
    return entity


def refund_entity() -> dict[str, Any]:
    return {
        "id": "rfnd_FP8QHiV938haTz",
        "entity": "refund",
        "amount": 50000,
        "currency": "INR",
        "payment_id": RZP_PAYMENT,
        "notes": [],
        "receipt": "rf_01HZX3J4K5",
        "acquirer_data": {"arn": None},
        "created_at": 1597078866,
        "batch_id": None,
        "status": "processed",
        "speed_processed": "normal",
        "speed_requested": "normal",
    }


def event(name: str, **payload: dict[str, Any]) -> bytes:
    body = {
        "entity": "event",
        "account_id": "acc_MWWeS9Ico5tQBk",
        "event": name,
        "contains": list(payload),
        "payload": {key: {"entity": value} for key, value in payload.items()},
        "created_at": 1748586717,
    }
    return json.dumps(body).encode()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_it_is_a_payment_provider(provider: RazorpayProvider) -> None:
    typed: PaymentProvider = provider
    assert (typed.name, typed.signature_header) == ("razorpay", "X-Razorpay-Signature")


class TestCreateCheckout:
    async def test_creates_a_payment_link_in_paise_named_by_our_payment(
        self, provider: RazorpayProvider, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request("/v1/payment_links", method="POST").respond_with_json(link_entity())

        checkout = await provider.create_checkout(payment_request())

        assert checkout == GatewayCheckout(reference=LINK_ID, url="https://rzp.io/rzp/S12PdyW")
        [(sent, _)] = httpserver.log
        assert sent.headers["Authorization"] == basic_auth()
        assert sent.headers["Content-Type"] == "application/json"
        assert json.loads(sent.get_data()) == {
            "amount": 149950,
            "currency": "INR",
            "accept_partial": False,
            "description": f"Order {ORDER}",
            "reference_id": OUR_PAYMENT,
            "notes": {"order_id": ORDER, "payment_id": OUR_PAYMENT},
            "notify": {"sms": False, "email": False},
            "reminder_enable": False,
            "customer": {"email": "asha@example.com"},
            "callback_url": f"https://shop.example.com/orders/{ORDER}",
            "callback_method": "get",
        }

    async def test_without_a_return_url_or_email_sends_neither(
        self, provider: RazorpayProvider, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request("/v1/payment_links", method="POST").respond_with_json(link_entity())

        await provider.create_checkout(payment_request(return_url=None, customer_email=None, amount=Decimal("1")))

        sent = json.loads(httpserver.log[0][0].get_data())
        assert sent["amount"] == 100
        assert not {"callback_url", "callback_method", "customer"} & sent.keys()

    @pytest.mark.parametrize(
        ("status", "code", "description"),
        [
            (400, "BAD_REQUEST_ERROR", "reference_id already exists"),
            (401, "BAD_REQUEST_ERROR", "Authentication failed"),
            (502, "GATEWAY_ERROR", "Gateway timed out"),
            (500, "SERVER_ERROR", "The server encountered an error. The incident has been reported to admins"),
        ],
    )
    async def test_an_error_answer_is_a_gateway_error(
        self, provider: RazorpayProvider, httpserver: HTTPServer, status: int, code: str, description: str
    ) -> None:
        httpserver.expect_oneshot_request("/v1/payment_links", method="POST").respond_with_json(
            error_body(code, description), status=status
        )

        with pytest.raises(GatewayError, match=description):
            await provider.create_checkout(payment_request())

    async def test_a_non_json_error_page_is_a_gateway_error(
        self, provider: RazorpayProvider, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request("/v1/payment_links", method="POST").respond_with_data(
            "<html>Bad Gateway</html>", status=502, content_type="text/html"
        )

        with pytest.raises(GatewayError):
            await provider.create_checkout(payment_request())

    async def test_an_answer_without_a_link_is_a_gateway_error(
        self, provider: RazorpayProvider, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request("/v1/payment_links", method="POST").respond_with_json({"entity": "x"})

        with pytest.raises(GatewayError, match="no id or short_url"):
            await provider.create_checkout(payment_request())

    async def test_an_unreachable_gateway_is_a_gateway_error(self) -> None:
        unreachable = RazorpayProvider(KEY_ID, KEY_SECRET, WEBHOOK_SECRET, api_base=f"http://127.0.0.1:{closed_port()}")

        with pytest.raises(GatewayError, match="ConnectionError"):
            await unreachable.create_checkout(payment_request())


class TestRefund:
    async def test_refunds_in_paise_with_our_refund_as_receipt_and_idempotency_key(
        self, provider: RazorpayProvider, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request(f"/v1/payments/{RZP_PAYMENT}/refund", method="POST").respond_with_json(
            refund_entity()
        )

        refund_reference = await provider.refund(
            transaction_id=RZP_PAYMENT, amount=Decimal("500.00"), currency="INR", refund_id="rf_01HZX3J4K5"
        )

        assert refund_reference == "rfnd_FP8QHiV938haTz"
        [(sent, _)] = httpserver.log
        assert sent.headers["Authorization"] == basic_auth()
        assert sent.headers["X-Refund-Idempotency"] == "rf_01HZX3J4K5"
        assert json.loads(sent.get_data()) == {"amount": 50000, "receipt": "rf_01HZX3J4K5"}

    async def test_a_refund_id_razorpay_would_refuse_as_a_key_is_hashed_into_one(
        self, provider: RazorpayProvider, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request(f"/v1/payments/{RZP_PAYMENT}/refund", method="POST").respond_with_json(
            refund_entity()
        )

        await provider.refund(transaction_id=RZP_PAYMENT, amount=Decimal("500.00"), currency="INR", refund_id="rf:1")

        sent = httpserver.log[0][0]
        assert sent.headers["X-Refund-Idempotency"] == hashlib.sha256(b"rf:1").hexdigest()
        assert json.loads(sent.get_data())["receipt"] == "rf:1"

    async def test_a_refused_refund_is_a_gateway_error(
        self, provider: RazorpayProvider, httpserver: HTTPServer
    ) -> None:
        httpserver.expect_oneshot_request(f"/v1/payments/{RZP_PAYMENT}/refund", method="POST").respond_with_json(
            error_body("BAD_REQUEST_ERROR", "The refund amount provided is greater than amount captured"), status=400
        )

        with pytest.raises(GatewayError, match="greater than amount captured"):
            await provider.refund(
                transaction_id=RZP_PAYMENT, amount=Decimal("5000.00"), currency="INR", refund_id="rf_01HZX3J4K5"
            )


class TestWebhookEvents:
    def test_a_paid_link_is_captured_with_the_razorpay_payment_to_refund_later(
        self, provider: RazorpayProvider
    ) -> None:
        body = event(
            "payment_link.paid",
            payment_link=link_entity(status="paid", amount_paid=149950),
            payment=payment_entity(),
            order={"id": "order_Qb2gOAUzSm5zpv", "entity": "order", "amount": 149950, "status": "paid"},
        )

        parsed = provider.verify_webhook(webhook_headers(body, event_id="evt_paid_1"), body)

        assert parsed == WebhookEvent(
            event_id="evt_paid_1",
            kind=WebhookKind.CAPTURED,
            raw_type="payment_link.paid",
            reference=LINK_ID,
            payment_id=OUR_PAYMENT,
            transaction_id=RZP_PAYMENT,
            amount=Decimal("1499.50"),
            currency="INR",
        )

    def test_headers_are_found_whatever_their_case(self, provider: RazorpayProvider) -> None:
        body = event("payment.captured", payment=payment_entity())
        headers = {"X-Razorpay-Signature": sign(body), "X-Razorpay-Event-Id": "evt_case"}

        parsed = provider.verify_webhook(headers, body)

        assert (parsed.event_id, parsed.kind, parsed.transaction_id) == ("evt_case", WebhookKind.CAPTURED, RZP_PAYMENT)

    def test_a_paid_link_without_its_payment_is_captured_for_the_amount_paid(self, provider: RazorpayProvider) -> None:
        body = event("payment_link.paid", payment_link=link_entity(status="paid", amount_paid=149950))

        parsed = provider.verify_webhook(webhook_headers(body, event_id="evt_link_only"), body)

        assert parsed == WebhookEvent(
            event_id="evt_link_only",
            kind=WebhookKind.CAPTURED,
            raw_type="payment_link.paid",
            reference=LINK_ID,
            payment_id=OUR_PAYMENT,
            amount=Decimal("1499.50"),
            currency="INR",
        )

    def test_a_captured_payment_of_our_link_is_captured(self, provider: RazorpayProvider) -> None:
        body = event("payment.captured", payment=payment_entity())

        parsed = provider.verify_webhook(webhook_headers(body, event_id="evt_cap"), body)

        assert parsed == WebhookEvent(
            event_id="evt_cap",
            kind=WebhookKind.CAPTURED,
            raw_type="payment.captured",
            payment_id=OUR_PAYMENT,
            transaction_id=RZP_PAYMENT,
            amount=Decimal("1499.50"),
            currency="INR",
        )

    def test_a_captured_payment_that_is_not_ours_is_ignored(self, provider: RazorpayProvider) -> None:
        body = event("payment.captured", payment=payment_entity(notes=[]))

        parsed = provider.verify_webhook(webhook_headers(body, event_id="evt_other"), body)

        assert parsed == WebhookEvent(event_id="evt_other", kind=WebhookKind.IGNORED, raw_type="payment.captured")

    def test_a_failed_attempt_is_recorded_but_fails_nothing(self, provider: RazorpayProvider) -> None:
        body = event(
            "payment.failed",
            payment=payment_entity(
                status="failed",
                error_code="BAD_REQUEST_ERROR",
                error_description="Payment failed because the card was declined by the bank",
                error_source="issuer",
                error_step="payment_authorization",
                error_reason="card_declined",
            ),
        )

        parsed = provider.verify_webhook(webhook_headers(body, event_id="evt_fail"), body)

        assert parsed == WebhookEvent(
            event_id="evt_fail",
            kind=WebhookKind.IGNORED,
            raw_type="payment.failed",
            payment_id=OUR_PAYMENT,
            transaction_id=RZP_PAYMENT,
            amount=Decimal("1499.50"),
            currency="INR",
            reason="Payment failed because the card was declined by the bank",
        )

    def test_an_expired_link_fails(self, provider: RazorpayProvider) -> None:
        body = event("payment_link.expired", payment_link=link_entity(status="expired"))

        parsed = provider.verify_webhook(webhook_headers(body, event_id="evt_exp"), body)

        assert parsed == WebhookEvent(
            event_id="evt_exp",
            kind=WebhookKind.FAILED,
            raw_type="payment_link.expired",
            reference=LINK_ID,
            payment_id=OUR_PAYMENT,
            reason="payment link expired",
        )

    def test_a_processed_refund_is_refunded_with_its_id(self, provider: RazorpayProvider) -> None:
        body = event(
            "refund.processed",
            refund=refund_entity(),
            payment=payment_entity(status="refunded", amount_refunded=50000, refund_status="partial"),
        )

        parsed = provider.verify_webhook(webhook_headers(body, event_id="evt_rf"), body)

        assert parsed == WebhookEvent(
            event_id="evt_rf",
            kind=WebhookKind.REFUNDED,
            raw_type="refund.processed",
            payment_id=OUR_PAYMENT,
            transaction_id=RZP_PAYMENT,
            amount=Decimal("500.00"),
            currency="INR",
            refund_reference="rfnd_FP8QHiV938haTz",
        )

    def test_other_events_are_ignored(self, provider: RazorpayProvider) -> None:
        body = event("order.paid", payment=payment_entity(), order={"id": "order_Qb2gOAUzSm5zpv", "entity": "order"})

        parsed = provider.verify_webhook(webhook_headers(body, event_id="evt_order"), body)

        assert parsed == WebhookEvent(event_id="evt_order", kind=WebhookKind.IGNORED, raw_type="order.paid")

    def test_without_an_event_id_header_the_same_body_gets_the_same_id(self, provider: RazorpayProvider) -> None:
        body = event("payment.captured", payment=payment_entity())
        other = event("payment.captured", payment=payment_entity(id="pay_Other000000001"))

        first = provider.verify_webhook({"x-razorpay-signature": sign(body)}, body)
        again = provider.verify_webhook({"x-razorpay-signature": sign(body)}, body)
        different = provider.verify_webhook({"x-razorpay-signature": sign(other)}, other)

        assert first.event_id == again.event_id != different.event_id
        assert first.event_id.startswith("rzp_body_")


class TestWebhookSignature:
    def body(self) -> bytes:
        return event("payment_link.paid", payment_link=link_entity(status="paid", amount_paid=149950))

    def test_a_tampered_body_is_refused(self, provider: RazorpayProvider) -> None:
        body = self.body()
        headers = webhook_headers(body)

        with pytest.raises(InvalidSignature):
            provider.verify_webhook(headers, body.replace(b"149950", b"100"))

    def test_a_body_signed_with_another_secret_is_refused(self, provider: RazorpayProvider) -> None:
        body = self.body()

        with pytest.raises(InvalidSignature):
            provider.verify_webhook(webhook_headers(body, secret="whsec_someone_else"), body)

    @pytest.mark.parametrize("headers", [{}, {"x-razorpay-signature": ""}, {"x-razorpay-event-id": "evt_1"}])
    def test_a_missing_signature_is_refused(self, provider: RazorpayProvider, headers: dict[str, str]) -> None:
        with pytest.raises(InvalidSignature, match="missing"):
            provider.verify_webhook(headers, self.body())

    @pytest.mark.parametrize("signature", ["not-hex-at-all", "é" * 64, "0" * 64])
    def test_a_garbage_signature_is_refused(self, provider: RazorpayProvider, signature: str) -> None:
        with pytest.raises(InvalidSignature):
            provider.verify_webhook({"x-razorpay-signature": signature}, self.body())

    def test_a_body_that_is_not_utf8_is_refused(self, provider: RazorpayProvider) -> None:
        body = b"\xff\xfe" + self.body()

        with pytest.raises(InvalidSignature):
            provider.verify_webhook(webhook_headers(body), body)

    @pytest.mark.parametrize("body", [b"not json", b'{"event": "payment_link.paid", "payload": {}}', b"[]"])
    def test_a_signed_body_that_is_not_a_razorpay_event_is_refused(
        self, provider: RazorpayProvider, body: bytes
    ) -> None:
        with pytest.raises(InvalidSignature, match="not a Razorpay event"):
            provider.verify_webhook(webhook_headers(body), body)
