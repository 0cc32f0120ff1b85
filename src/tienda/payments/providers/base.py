"""What every payment gateway does for us, whatever its API looks like.

A gateway opens a checkout for a payment (a page the buyer pays on), tells us what happened
through webhooks that we verify with its own signature scheme, and refunds. Everything else
(statuses, deduplication, amounts, events) is the payments service's, the same for all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF"})


def to_minor(amount: Decimal, currency: str) -> int:
    """Gateways count in the currency's smallest unit (paise, cents)."""
    return int(amount if currency.upper() in ZERO_DECIMAL_CURRENCIES else amount * 100)


def from_minor(units: int, currency: str) -> Decimal:
    if currency.upper() in ZERO_DECIMAL_CURRENCIES:
        return Decimal(units).quantize(Decimal("0.01"))
    return (Decimal(units) / 100).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class PaymentRequest:
    payment_id: str
    order_id: str
    amount: Decimal
    currency: str
    description: str
    customer_email: str | None = None
    return_url: str | None = None


@dataclass(frozen=True)
class GatewayCheckout:
    reference: str
    """The gateway's id of this checkout (a payment link, a checkout session); webhooks name it."""
    url: str
    """Where the buyer pays."""


class WebhookKind(StrEnum):
    CAPTURED = "CAPTURED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"
    IGNORED = "IGNORED"
    """A verified event we have no use for (the gateway sends many kinds)."""


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    """The gateway's id of this delivery's event: a redelivery carries the same."""
    kind: WebhookKind
    raw_type: str
    reference: str | None = None
    payment_id: str | None = None
    """Ours, when the gateway echoes it back (receipt, client reference, metadata)."""
    transaction_id: str | None = None
    """The gateway's id of the money movement (what a refund names)."""
    amount: Decimal | None = None
    currency: str | None = None
    reason: str | None = None
    refund_reference: str | None = None
    """For REFUNDED: the gateway's refund id, so our own refunds are not counted twice."""
    refunded_total: Decimal | None = None
    """For REFUNDED, from gateways that report everything refunded so far (Stripe's charge)
    instead of this refund's `amount`."""


class InvalidSignature(Exception):
    """The webhook was not signed by the gateway (or too long ago): nothing is recorded."""


class GatewayError(Exception):
    """The gateway refused or could not be reached."""


class PaymentProvider(Protocol):
    name: str
    signature_header: str
    """The header carrying the webhook signature; `POST /payments/webhook` picks the gateway by it."""
    opens_remotely: bool
    """Whether `create_checkout` asks the gateway (a checkout session there): an order's
    payment is then looked for before one is opened, so that a repeated request opens no
    second checkout at the gateway. A gateway that opens locally is tried at once, and a
    payment the order has already is found when its INSERT is refused."""

    async def create_checkout(self, request: PaymentRequest) -> GatewayCheckout: ...

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """The event in a webhook whose signature is the gateway's, else `InvalidSignature`.
        `headers` are looked up case-insensitively (lower-case keys)."""
        ...

    async def refund(self, *, transaction_id: str, amount: Decimal, currency: str, refund_id: str) -> str:
        """Refund `amount` of a captured payment; returns the gateway's refund id. `refund_id`
        (ours) makes a retry of the same refund harmless where the gateway supports it."""
        ...
