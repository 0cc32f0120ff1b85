"""Stripe, through its official SDK: a Checkout Session per payment, webhooks signed by Stripe.

A checkout is a hosted Checkout Session in payment mode whose `client_reference_id` is our
payment id. Webhooks carry `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
checked by the SDK, which also refuses one older than the tolerance. The SDK's async methods
run on httpx, so nothing blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import stripe
from stripe.params import RefundCreateParams
from stripe.params.checkout import SessionCreateParams

from tienda.payments.providers.base import (
    GatewayCheckout,
    GatewayError,
    InvalidSignature,
    PaymentRequest,
    WebhookEvent,
    WebhookKind,
    from_minor,
    to_minor,
)

SIGNATURE_HEADER = "Stripe-Signature"
DEFAULT_API_BASE = "https://api.stripe.com"

_CAPTURED = frozenset({"checkout.session.completed", "checkout.session.async_payment_succeeded"})
_FAILED = {
    "checkout.session.expired": "checkout session expired",
    "checkout.session.async_payment_failed": "asynchronous payment failed",
}


class StripeProvider:
    name = "stripe"
    signature_header = SIGNATURE_HEADER
    opens_remotely = True

    def __init__(
        self,
        secret_key: str,
        webhook_secret: str,
        api_base: str = DEFAULT_API_BASE,
        *,
        default_return_url: str | None = None,
        timeout_seconds: float = 30.0,
        max_network_retries: int = 2,
        tolerance_seconds: int = 300,
    ) -> None:
        self.webhook_secret = webhook_secret
        self.default_return_url = default_return_url
        self.tolerance_seconds = tolerance_seconds
        self._http = stripe.HTTPXClient(timeout=timeout_seconds)
        # Retries of a POST reuse its idempotency key (ours, or one the SDK makes), so they are safe.
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base.rstrip("/")},
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

    async def create_checkout(self, request: PaymentRequest) -> GatewayCheckout:
        ids = {"order_id": request.order_id, "payment_id": request.payment_id}
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": to_minor(request.amount, request.currency),
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "client_reference_id": request.payment_id,
            "metadata": ids,
            # Also on the PaymentIntent, so its charge and refunds name our payment.
            "payment_intent_data": {"metadata": ids},
        }
        return_url = request.return_url or self.default_return_url
        if return_url:
            params["success_url"] = return_url
            params["cancel_url"] = return_url
        if request.customer_email:
            params["customer_email"] = request.customer_email
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": f"checkout-{request.payment_id}"}
            )
        except stripe.StripeError as exc:
            raise GatewayError(f"stripe: {type(exc).__name__}: {exc}") from exc
        if not session.id or not session.url:
            raise GatewayError("stripe: the checkout session has no id or url")
        return GatewayCheckout(reference=session.id, url=session.url)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        lowered = {key.lower(): value for key, value in headers.items()}
        signature = lowered.get(SIGNATURE_HEADER.lower())
        if not signature:
            raise InvalidSignature(f"missing {SIGNATURE_HEADER} header")
        try:
            event = self._client.construct_event(body, signature, self.webhook_secret, self.tolerance_seconds)
        except stripe.SignatureVerificationError as exc:
            raise InvalidSignature(exc.user_message or "signature does not match") from exc
        except (ValueError, TypeError) as exc:  # not UTF-8, not JSON, or a signature no HMAC can be
            raise InvalidSignature("signed, but not a Stripe event") from exc
        try:
            return _event(event.to_dict())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidSignature("signed, but not a Stripe event") from exc

    async def refund(self, *, transaction_id: str, amount: Decimal, currency: str, refund_id: str) -> str:
        params: RefundCreateParams = {
            "payment_intent": transaction_id,
            "amount": to_minor(amount, currency),
            "metadata": {"refund_id": refund_id},
        }
        try:
            refund = await self._client.v1.refunds.create_async(params, {"idempotency_key": refund_id})
        except stripe.StripeError as exc:
            raise GatewayError(f"stripe: {type(exc).__name__}: {exc}") from exc
        if not refund.id:
            raise GatewayError("stripe: the refund has no id")
        return refund.id

    async def aclose(self) -> None:
        """Closes the HTTP connections; the provider is not used after."""
        await self._http.close_async()  # type: ignore[no-untyped-call]


def _event(event: dict[str, Any]) -> WebhookEvent:
    event_id, raw_type = str(event["id"]), str(event["type"])
    obj: dict[str, Any] = event["data"]["object"]
    if raw_type in _CAPTURED:
        # A completed session paid by a delayed method (a bank debit) is still "unpaid": its
        # outcome comes later as async_payment_succeeded or async_payment_failed.
        if obj.get("payment_status") != "paid":
            return WebhookEvent(event_id=event_id, kind=WebhookKind.IGNORED, raw_type=raw_type)
        currency = str(obj["currency"]).upper()
        return WebhookEvent(
            event_id=event_id,
            kind=WebhookKind.CAPTURED,
            raw_type=raw_type,
            reference=str(obj["id"]),
            payment_id=_our_payment_id(obj),
            transaction_id=_id_of(obj.get("payment_intent")),
            amount=from_minor(int(obj["amount_total"]), currency),
            currency=currency,
        )
    if raw_type in _FAILED:
        return WebhookEvent(
            event_id=event_id,
            kind=WebhookKind.FAILED,
            raw_type=raw_type,
            reference=str(obj["id"]),
            payment_id=_our_payment_id(obj),
            transaction_id=_id_of(obj.get("payment_intent")),
            reason=_FAILED[raw_type],
        )
    if raw_type == "charge.refunded":
        currency = str(obj["currency"]).upper()
        # Charges no longer embed their refunds by default; when they do, the newest is first.
        refunds = (obj.get("refunds") or {}).get("data") or []
        return WebhookEvent(
            event_id=event_id,
            kind=WebhookKind.REFUNDED,
            raw_type=raw_type,
            payment_id=_our_payment_id(obj),
            transaction_id=_id_of(obj.get("payment_intent")),
            # Everything refunded on the charge so far, not only the latest refund.
            refunded_total=from_minor(int(obj["amount_refunded"]), currency),
            currency=currency,
            refund_reference=_id_of(refunds[0]) if refunds else None,
        )
    return WebhookEvent(event_id=event_id, kind=WebhookKind.IGNORED, raw_type=raw_type)


def _our_payment_id(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata") or {}
    found = obj.get("client_reference_id") or metadata.get("payment_id")
    return str(found) if found else None


def _id_of(value: Any) -> str | None:
    """An id, whether Stripe sent it as a string or expanded the object."""
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if value else None
