"""DTOs of orders and coupons, camelCase on the wire."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import Field, PlainSerializer, field_validator, model_validator

from tienda.orders.domain import CouponKind, OrderStatus, check_coupon_terms
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


# -- orders ------------------------------------------------------------------------------

PaymentMethod = Literal["PAYMENT_GATEWAY", "COD"]


class OrderCreate(Schema):
    """SEED.md's OrderCreateDTO. The order is always built from the caller's own cart; `userId`
    and `cartId`, when sent, must be the caller's."""

    model_config = Schema.model_config | {
        "json_schema_extra": examples(
            {
                "shippingAddressId": "adr_7k2m4n6p8q1r",
                "paymentMethod": "COD",
                "couponCode": "NEWUSER10",
            }
        )
    }

    user_id: Annotated[str, Field(max_length=64)] | None = None
    cart_id: Annotated[str, Field(max_length=64)] | None = None
    shipping_address_id: Annotated[str, Field(min_length=1, max_length=64)]
    billing_address_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="Defaults to the shipping address."
    )
    payment_method: PaymentMethod = Field(
        default="PAYMENT_GATEWAY", description="PAYMENT_GATEWAY (the configured provider) or COD (cash on delivery)."
    )
    coupon_code: Annotated[str, Field(min_length=1, max_length=32)] | None = None


class AddressRead(ReadSchema):
    address_id: str
    label: str | None
    line1: str
    line2: str | None
    city: str
    state: str | None
    postal_code: str
    country: str
    phone: str | None


class OrderItemRead(ReadSchema):
    product_id: str
    variant_id: str | None
    sku: str | None
    name: str
    attributes: dict[str, str]
    quantity: int
    unit_price: Amount
    total_price: Amount
    discount_amount: Amount
    tax_rate: Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]
    tax_amount: Amount


class OrderRead(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "orderId": "ord_20261125_0001",
                "userId": "u_123abc456def",
                "status": "CONFIRMED",
                "paymentStatus": "COD_PENDING",
                "paymentMethod": "COD",
                "paymentId": None,
                "paymentUrl": None,
                "currency": "INR",
                "items": [
                    {
                        "productId": "p_4m8k2x9q7w3e",
                        "variantId": "v_8d2k4m6n8p1q",
                        "sku": "TSHIRT-RED-M",
                        "name": "Men's T-Shirt",
                        "attributes": {"color": "red", "size": "M"},
                        "quantity": 2,
                        "unitPrice": 499.0,
                        "totalPrice": 998.0,
                        "discountAmount": 99.8,
                        "taxRate": 0.18,
                        "taxAmount": 161.68,
                    }
                ],
                "subtotalAmount": 998.0,
                "discountAmount": 99.8,
                "taxAmount": 161.68,
                "shippingAmount": 49.0,
                "totalAmount": 1108.88,
                "refundedAmount": 0.0,
                "couponCode": "NEWUSER10",
                "shippingAddress": {
                    "addressId": "adr_7k2m4n6p8q1r",
                    "label": "Home",
                    "line1": "12 MG Road",
                    "line2": None,
                    "city": "Bengaluru",
                    "state": "KA",
                    "postalCode": "560001",
                    "country": "IN",
                    "phone": "9876543210",
                },
                "billingAddress": {
                    "addressId": "adr_7k2m4n6p8q1r",
                    "label": "Home",
                    "line1": "12 MG Road",
                    "line2": None,
                    "city": "Bengaluru",
                    "state": "KA",
                    "postalCode": "560001",
                    "country": "IN",
                    "phone": "9876543210",
                },
                "trackingNumber": None,
                "failureReason": None,
                "expiresAt": "2026-11-25T10:15:00Z",
                "createdAt": "2026-11-25T10:00:00Z",
                "updatedAt": "2026-11-25T10:00:01Z",
            }
        )
    }

    order_id: str
    user_id: str
    status: OrderStatus
    payment_status: str
    payment_method: str
    payment_id: str | None
    payment_url: str | None = Field(default=None, description="Where the buyer pays, while payment is pending.")
    currency: str
    items: list[OrderItemRead]
    subtotal_amount: Amount
    discount_amount: Amount
    tax_amount: Amount
    shipping_amount: Amount
    total_amount: Amount
    refunded_amount: Amount
    coupon_code: str | None
    shipping_address: AddressRead
    billing_address: AddressRead
    tracking_number: str | None
    failure_reason: str | None
    expires_at: datetime = Field(description="A pending payment must arrive before this.")
    created_at: datetime
    updated_at: datetime


class StatusChange(Schema):
    """An admin's move along the lifecycle: PACKED, SHIPPED (with a tracking number), DELIVERED."""

    model_config = Schema.model_config | {
        "json_schema_extra": examples({"status": "SHIPPED", "trackingNumber": "DTDC123456789IN"})
    }

    status: Literal["PACKED", "SHIPPED", "DELIVERED"]
    tracking_number: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class CancelRequest(Schema):
    model_config = Schema.model_config | {"json_schema_extra": examples({"reason": "Ordered by mistake"})}

    reason: Annotated[str, Field(max_length=255)] | None = None


class RefundRequest(Schema):
    model_config = Schema.model_config | {
        "json_schema_extra": examples(
            {"amount": 499.00, "reason": "One item arrived damaged"}, {"reason": "Full refund"}
        )
    }

    amount: Amount | None = Field(default=None, description="Omitted: everything not refunded yet.")
    reason: Annotated[str, Field(max_length=255)] | None = None
