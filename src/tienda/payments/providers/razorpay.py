"""Razorpay, through its official SDK: a Payment Link per payment, webhooks signed by Razorpay.

A checkout is a Payment Link whose `reference_id` is our payment id; Razorpay copies the link's
`notes` onto the order and the payment it creates, so a payment's events carry our ids too.
A webhook's `X-Razorpay-Signature` is the hex HMAC-SHA256 of the raw body under the webhook
secret; it has no timestamp, so redeliveries are recognised by `X-Razorpay-Event-Id` alone.

The SDK is synchronous (requests): its calls run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import razorpay
import requests
from razorpay.errors import BadRequestError, ServerError, SignatureVerificationError
from razorpay.errors import GatewayError as SdkGatewayError

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

SIGNATURE_HEADER = "X-Razorpay-Signature"
EVENT_ID_HEADER = "X-Razorpay-Event-Id"
IDEMPOTENCY_HEADER = "X-Refund-Idempotency"
DEFAULT_API_BASE = "https://api.razorpay.com"

# What the SDK lets escape: its own errors for an error answer, requests' for the transport,
# and ValueError for a body that is not JSON.
_SDK_ERRORS = (BadRequestError, SdkGatewayError, ServerError, requests.RequestException, ValueError)
# Razorpay accepts 10+ characters of letters, digits, '-' and '_' as a refund idempotency key.
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{10,}")


class RazorpayProvider:
    name = "razorpay"
    signature_header = SIGNATURE_HEADER
    opens_remotely = True

    def __init__(
        self,
        key_id: str,
        key_secret: str,
        webhook_secret: str,
        api_base: str = DEFAULT_API_BASE,
        *,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.webhook_secret = webhook_secret
        self.timeout_seconds = timeout_seconds
        # The SDK prefixes every path ("/v1/...") with its `base_url` option.
        self._client = razorpay.Client(auth=(key_id, key_secret), base_url=api_base.rstrip("/"))

    async def create_checkout(self, request: PaymentRequest) -> GatewayCheckout:
        data: dict[str, Any] = {
            "amount": to_minor(request.amount, request.currency),
            "currency": request.currency.upper(),
            "accept_partial": False,
            "description": request.description,
            "reference_id": request.payment_id,
            "notes": {"order_id": request.order_id, "payment_id": request.payment_id},
            # We send the buyer the link ourselves; Razorpay should not mail or text it too.
            "notify": {"sms": False, "email": False},
            "reminder_enable": False,
        }
        if request.customer_email:
            data["customer"] = {"email": request.customer_email}
        if request.return_url:
            data["callback_url"] = request.return_url
            data["callback_method"] = "get"
        link = await self._call(lambda: self._client.payment_link.create(data, timeout=self.timeout_seconds))
        reference, url = link.get("id"), link.get("short_url")
        if not isinstance(reference, str) or not isinstance(url, str):
            raise GatewayError("razorpay: the payment link answer has no id or short_url")
        return GatewayCheckout(reference=reference, url=url)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        lowered = {key.lower(): value for key, value in headers.items()}
        signature = lowered.get(SIGNATURE_HEADER.lower())
        if not signature:
            raise InvalidSignature(f"missing {SIGNATURE_HEADER} header")
        try:
            self._client.utility.verify_webhook_signature(body.decode("utf-8"), signature, self.webhook_secret)
        except SignatureVerificationError as exc:
            raise InvalidSignature("signature does not match") from exc
        except (UnicodeDecodeError, TypeError) as exc:  # a body or a signature no HMAC of ours can be
            raise InvalidSignature("malformed body or signature") from exc
        event_id = lowered.get(EVENT_ID_HEADER.lower()) or _body_id(body)
        try:
            return _event(event_id, json.loads(body))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidSignature("signed, but not a Razorpay event") from exc

    async def refund(self, *, transaction_id: str, amount: Decimal, currency: str, refund_id: str) -> str:
        data = {"amount": to_minor(amount, currency), "receipt": refund_id}
        headers = {IDEMPOTENCY_HEADER: _idempotency_key(refund_id)}
        refund = await self._call(
            lambda: self._client.payment.refund(transaction_id, data, headers=headers, timeout=self.timeout_seconds)
        )
        refund_reference = refund.get("id")
        if not isinstance(refund_reference, str):
            raise GatewayError("razorpay: the refund answer has no id")
        return refund_reference

    async def _call(self, call: Callable[[], Any]) -> dict[str, Any]:
        try:
            answer = await asyncio.to_thread(call)
        except _SDK_ERRORS as exc:
            raise GatewayError(f"razorpay: {type(exc).__name__}: {exc}") from exc
        if not isinstance(answer, dict):
            raise GatewayError("razorpay: the answer is not a JSON object")
        return answer


def _event(event_id: str, event: dict[str, Any]) -> WebhookEvent:
    raw_type = str(event["event"])
    payload = event["payload"]
    if raw_type == "payment_link.paid":
        link = _entity(payload, "payment_link")
        payment = _entity(payload, "payment") if "payment" in payload else None
        if payment is None:  # not in any payload we know of; the link still says what was paid
            amount, currency = _money(link, "amount_paid")
            transaction_id = None
        else:
            amount, currency = _money(payment, "amount")
            transaction_id = str(payment["id"])
        return WebhookEvent(
            event_id=event_id,
            kind=WebhookKind.CAPTURED,
            raw_type=raw_type,
            reference=str(link["id"]),
            payment_id=link.get("reference_id") or _notes(link).get("payment_id"),
            transaction_id=transaction_id,
            amount=amount,
            currency=currency,
        )
    if raw_type in ("payment_link.expired", "payment_link.cancelled"):
        link = _entity(payload, "payment_link")
        return WebhookEvent(
            event_id=event_id,
            kind=WebhookKind.FAILED,
            raw_type=raw_type,
            reference=str(link["id"]),
            payment_id=link.get("reference_id") or _notes(link).get("payment_id"),
            reason=f"payment link {raw_type.removeprefix('payment_link.')}",
        )
    if raw_type in ("payment.captured", "payment.failed"):
        payment = _entity(payload, "payment")
        payment_id = _notes(payment).get("payment_id")
        if not payment_id:  # a payment of the account that is not one of our links
            return WebhookEvent(event_id=event_id, kind=WebhookKind.IGNORED, raw_type=raw_type)
        amount, currency = _money(payment, "amount")
        failed = raw_type == "payment.failed"
        return WebhookEvent(
            event_id=event_id,
            # A failed attempt does not fail the payment: the buyer may try again on the same
            # link; the link's expiry (or cancellation) is what fails it.
            kind=WebhookKind.IGNORED if failed else WebhookKind.CAPTURED,
            raw_type=raw_type,
            payment_id=str(payment_id),
            transaction_id=str(payment["id"]),
            amount=amount,
            currency=currency,
            reason=_failure_reason(payment) if failed else None,
        )
    if raw_type == "refund.processed":
        refund = _entity(payload, "refund")
        payment = _entity(payload, "payment") if "payment" in payload else {}
        amount, currency = _money(refund, "amount")
        payment_id = _notes(payment).get("payment_id")
        return WebhookEvent(
            event_id=event_id,
            kind=WebhookKind.REFUNDED,
            raw_type=raw_type,
            payment_id=str(payment_id) if payment_id else None,
            transaction_id=str(refund["payment_id"]),
            amount=amount,
            currency=currency,
            refund_reference=str(refund["id"]),
        )
    return WebhookEvent(event_id=event_id, kind=WebhookKind.IGNORED, raw_type=raw_type)


def _entity(payload: Mapping[str, Any], name: str) -> dict[str, Any]:
    entity = payload[name]["entity"]
    if not isinstance(entity, dict):
        raise TypeError(f"{name} is not an object")
    return entity


def _notes(entity: Mapping[str, Any]) -> dict[str, Any]:
    notes = entity.get("notes")
    return notes if isinstance(notes, dict) else {}  # Razorpay sends [] (or null) for no notes


def _money(entity: Mapping[str, Any], field: str) -> tuple[Decimal, str]:
    currency = str(entity["currency"]).upper()
    return from_minor(int(entity[field]), currency), currency


def _failure_reason(payment: Mapping[str, Any]) -> str:
    for field in ("error_description", "error_reason", "error_code"):
        if payment.get(field):
            return str(payment[field])
    return "payment failed"


def _body_id(body: bytes) -> str:
    """Razorpay always sends an event id header; should one be missing, the same body is the same event."""
    return "rzp_body_" + hashlib.sha256(body).hexdigest()[:32]


def _idempotency_key(refund_id: str) -> str:
    if _IDEMPOTENCY_KEY.fullmatch(refund_id):
        return refund_id
    return hashlib.sha256(refund_id.encode()).hexdigest()
