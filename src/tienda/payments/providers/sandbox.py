"""The built-in gateway for development, tests and benchmarks.

Its checkout page is served by us (`GET /api/v1/payments/sandbox/{paymentId}`) with Approve and
Decline buttons; a decision is sent to `POST /api/v1/payments/webhook` as a real gateway
would: a JSON event with an id, signed with a shared secret in Stripe's scheme
(`Tienda-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`), refused when the
signature is wrong or older than the tolerance. Anyone holding the secret (a test, the bench)
can play the gateway the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tienda.payments.providers.base import (
    GatewayCheckout,
    InvalidSignature,
    PaymentRequest,
    WebhookEvent,
    WebhookKind,
)
from tienda.platform.clock import Clock

SIGNATURE_HEADER = "Tienda-Signature"
KINDS = {"payment.captured": WebhookKind.CAPTURED, "payment.failed": WebhookKind.FAILED}


def reference_of(payment_id: str) -> str:
    return f"sbx_{payment_id}"


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def event_body(
    *,
    event_type: str,
    payment_id: str,
    reference: str,
    amount: Decimal,
    currency: str,
    created: int,
    reason: str | None = None,
    event_id: str | None = None,
) -> bytes:
    """A sandbox webhook event, as the gateway would send it."""
    data: dict[str, Any] = {
        "paymentId": payment_id,
        "reference": reference,
        "transactionId": f"sbx_txn_{reference.removeprefix('sbx_')}",
        "amount": str(amount),
        "currency": currency,
    }
    if reason:
        data["reason"] = reason
    event = {"id": event_id or f"evt_{secrets.token_hex(12)}", "type": event_type, "created": created, "data": data}
    return json.dumps(event, separators=(",", ":")).encode()


class SandboxProvider:
    name = "sandbox"
    signature_header = SIGNATURE_HEADER
    opens_remotely = False  # the page is ours

    def __init__(self, *, secret: str, clock: Clock, page_base: str, tolerance_seconds: int = 300) -> None:
        self.secret = secret
        self.clock = clock
        self.page_base = page_base.rstrip("/")
        self.tolerance_seconds = tolerance_seconds

    async def create_checkout(self, request: PaymentRequest) -> GatewayCheckout:
        return GatewayCheckout(reference=reference_of(request.payment_id), url=f"{self.page_base}/{request.payment_id}")

    def signed(self, body: bytes) -> dict[str, str]:
        """Headers the sandbox gateway sends with `body`."""
        return {SIGNATURE_HEADER: sign(self.secret, body, timestamp=int(self.clock.now().timestamp()))}

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        header = headers.get(SIGNATURE_HEADER.lower(), "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts["t"])
        except (KeyError, ValueError) as exc:
            raise InvalidSignature("missing or malformed signature") from exc
        expected = sign(self.secret, body, timestamp=timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, parts.get("v1", "")):
            raise InvalidSignature("signature does not match")
        if abs(self.clock.now().timestamp() - timestamp) > self.tolerance_seconds:
            raise InvalidSignature("signature too old")
        try:
            event = json.loads(body)
            data = event["data"]
            return WebhookEvent(
                event_id=str(event["id"]),
                kind=KINDS.get(event["type"], WebhookKind.IGNORED),
                raw_type=str(event["type"]),
                reference=data.get("reference"),
                payment_id=data.get("paymentId"),
                transaction_id=data.get("transactionId"),
                amount=Decimal(str(data["amount"])) if data.get("amount") is not None else None,
                currency=data.get("currency"),
                reason=data.get("reason"),
            )
        except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
            raise InvalidSignature("signed, but not a sandbox event") from exc

    async def refund(self, *, transaction_id: str, amount: Decimal, currency: str, refund_id: str) -> str:
        # The same refund of ours always gets the same gateway id, as an idempotent gateway would.
        return "sbx_rf_" + hashlib.sha256(f"{transaction_id}:{refund_id}".encode()).hexdigest()[:16]
