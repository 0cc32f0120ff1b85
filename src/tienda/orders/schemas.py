"""DTOs of orders, camelCase on the wire: coupons so far."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from tienda.orders.domain import CouponKind, check_coupon_terms
from tienda.platform.money import Amount
from tienda.platform.schemas import ReadSchema, Schema, examples

Code = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


def _upper(code: str | None) -> str | None:
    return code.upper() if code is not None else None


class CouponCreate(Schema):
    model_config = Schema.model_config | {
        "json_schema_extra": examples(
            {
                "code": "DIWALI20",
                "description": "20% off, up to 500",
                "discountType": "PERCENT",
                "value": 20,
                "minOrderAmount": 999,
                "maxDiscountAmount": 500,
                "startsAt": "2026-11-01T00:00:00Z",
                "endsAt": "2026-11-15T00:00:00Z",
                "usageLimit": 1000,
                "perUserLimit": 1,
            }
        )
    }

    code: Code
    description: Annotated[str, Field(max_length=255)] | None = None
    discount_type: CouponKind
    value: Amount = Field(description="PERCENT: the percentage (0-100]; FIXED: the amount taken off.")
    min_order_amount: Amount = Field(default=Decimal("0.00"), description="Subtotal needed to use it.")
    max_discount_amount: Amount | None = Field(default=None, description="The most it takes off.")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: Annotated[int, Field(ge=1, le=1_000_000_000)] | None = Field(
        default=None, description="Uses over all buyers; none: unlimited."
    )
    per_user_limit: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        default=None, description="Uses per buyer; none: unlimited."
    )
    first_order_only: bool = Field(default=False, description="Only on a buyer's first order.")
    is_active: bool = True

    _code = field_validator("code")(_upper)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_coupon_terms(self.discount_type, self.value, self.starts_at, self.ends_at)
        return self


class CouponUpdate(Schema):
    """Only the fields sent change; the code stays (a new code is a new coupon)."""

    model_config = Schema.model_config | {"json_schema_extra": examples({"isActive": False})}

    description: Annotated[str, Field(max_length=255)] | None = None
    discount_type: CouponKind | None = None
    value: Amount | None = None
    min_order_amount: Amount | None = None
    max_discount_amount: Amount | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: Annotated[int, Field(ge=1, le=1_000_000_000)] | None = None
    per_user_limit: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    first_order_only: bool | None = None
    is_active: bool | None = None

    @field_validator("discount_type", "value", "min_order_amount", "first_order_only", "is_active")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, not set to null")
        return value


class CouponRead(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "couponId": "cpn_4k2m9x7q3w8e",
                "code": "NEWUSER10",
                "description": "10% off your first order",
                "discountType": "PERCENT",
                "value": 10.0,
                "minOrderAmount": 0.0,
                "maxDiscountAmount": None,
                "startsAt": None,
                "endsAt": None,
                "usageLimit": None,
                "perUserLimit": None,
                "firstOrderOnly": True,
                "isActive": True,
                "usedCount": 0,
                "createdAt": "2026-11-25T10:00:00Z",
                "updatedAt": "2026-11-25T10:00:00Z",
            }
        )
    }

    coupon_id: str
    code: str
    description: str | None
    discount_type: CouponKind
    value: Amount
    min_order_amount: Amount
    max_discount_amount: Amount | None
    starts_at: datetime | None
    ends_at: datetime | None
    usage_limit: int | None
    per_user_limit: int | None
    first_order_only: bool
    is_active: bool
    used_count: int
    created_at: datetime
    updated_at: datetime
