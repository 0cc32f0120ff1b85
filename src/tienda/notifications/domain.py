"""Pure rules of notifications: the types and channels, what each type's payload must carry,
when a failed send is tried again, and what makes two notifications the same one."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from tienda.platform.money import quantize


class NotificationType(StrEnum):
    ORDER_CONFIRMATION = "ORDER_CONFIRMATION"
    ORDER_SHIPPED = "ORDER_SHIPPED"
    ORDER_DELIVERED = "ORDER_DELIVERED"
    ORDER_CANCELLED = "ORDER_CANCELLED"
    PASSWORD_RESET_OTP = "PASSWORD_RESET_OTP"
    WELCOME = "WELCOME"
    LOW_STOCK = "LOW_STOCK"


class Channel(StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"


class Status(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


SMS_TYPES = frozenset(
    {
        NotificationType.ORDER_CONFIRMATION,
        NotificationType.ORDER_SHIPPED,
        NotificationType.ORDER_DELIVERED,
        NotificationType.PASSWORD_RESET_OTP,
    }
)
"""Types that also go by SMS to a recipient with a phone number (the others have no SMS text)."""

ADMIN_TYPES = frozenset({NotificationType.LOW_STOCK})
"""Types that may be sent without a user: they go to every active admin."""

SECRET_FIELDS: dict[NotificationType, tuple[str, ...]] = {NotificationType.PASSWORD_RESET_OTP: ("code",)}
"""Payload fields never shown back, and wiped once the notification is settled."""

MASK = "******"

MAX_RETRY_DELAY = timedelta(days=1)


def channels_for(kind: NotificationType, *, has_phone: bool) -> list[Channel]:
    """The channels a notification of this type goes out on when the caller names none."""
    return [Channel.EMAIL, *([Channel.SMS] if kind in SMS_TYPES and has_phone else [])]


def retry_delay(attempts: int, base_seconds: float) -> timedelta:
    """Exponential backoff: `base` after the first failed attempt, doubled after each next one."""
    return min(timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0)), MAX_RETRY_DELAY)


def dedup_key(source: str, channel: Channel, recipient: str) -> str:
    """One notification per source (an event, a request), channel and recipient."""
    return hashlib.sha256(f"{source}\x1f{channel.value}\x1f{recipient.lower()}".encode()).hexdigest()


def masked(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as it may be shown: secrets (a reset code) replaced by a mask."""
    secrets = next((fields for each, fields in SECRET_FIELDS.items() if each == kind), ())
    return {k: (MASK if k in secrets and v is not None else v) for k, v in payload.items()}


# -- payloads: what the templates of each type are rendered from --------------------------------

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]


class Payload(BaseModel):
    """camelCase keys, as events carry them; unknown keys are dropped."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    full_name: Annotated[str, StringConstraints(max_length=255)] | None = Field(
        default=None, description="The recipient's name (filled in from their profile when left out)."
    )


class OrderLine(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    name: Text
    sku: Annotated[str, StringConstraints(max_length=100)] | None = None
    quantity: Annotated[int, Field(ge=1, le=1_000_000)]
    unit_price: Money

    @property
    def total(self) -> Decimal:
        return quantize(self.unit_price * self.quantity)


class OrderPayload(Payload):
    order_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "INR"
    total_amount: Money
    items: Annotated[list[OrderLine], Field(max_length=500)] = []
    payment_method: Annotated[str, StringConstraints(max_length=30)] | None = None
    payment_status: Annotated[str, StringConstraints(max_length=30)] | None = None
    tracking_number: Annotated[str, StringConstraints(max_length=100)] | None = None
    reason: Annotated[str, StringConstraints(max_length=255)] | None = None

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.items)


class PasswordResetPayload(Payload):
    code: Annotated[str, StringConstraints(pattern=r"^\d{4,10}$")]
    minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 10


class WelcomePayload(Payload):
    pass


class LowStockPayload(Payload):
    product_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    variant_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    product_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    variant_label: Annotated[str, StringConstraints(max_length=255)] | None = None
    available: int
    threshold: int
    stock_count: int | None = None
    reserved: int | None = None


PAYLOADS: dict[NotificationType, type[Payload]] = {
    NotificationType.ORDER_CONFIRMATION: OrderPayload,
    NotificationType.ORDER_SHIPPED: OrderPayload,
    NotificationType.ORDER_DELIVERED: OrderPayload,
    NotificationType.ORDER_CANCELLED: OrderPayload,
    NotificationType.PASSWORD_RESET_OTP: PasswordResetPayload,
    NotificationType.WELCOME: WelcomePayload,
    NotificationType.LOW_STOCK: LowStockPayload,
}


def parse_payload(kind: NotificationType, payload: dict[str, Any]) -> Payload:
    """The payload checked against what this type's templates need; raises pydantic's
    ValidationError naming the bad fields."""
    return PAYLOADS[kind].model_validate(payload)


def stored_payload(payload: Payload) -> dict[str, Any]:
    return payload.model_dump(mode="json", by_alias=True, exclude_none=True)
