"""DTOs of payments, camelCase on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from tienda.platform.money import Amount
from tienda.platform.schemas import ReadSchema, Schema, examples

ProviderName = Literal["sandbox", "razorpay", "stripe", "SANDBOX", "RAZORPAY", "STRIPE"]


class PaymentInitiate(Schema):
    model_config = Schema.model_config | {
        "json_schema_extra": examples(
            {"orderId": "ord_20261126_0001", "amount": 999.00, "currency": "INR", "paymentProvider": "SANDBOX"}
        )
    }

    order_id: Annotated[str, Field(min_length=1, max_length=64)]
    amount: Amount | None = Field(default=None, description="If given, must be the order's total.")
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    payment_provider: ProviderName | None = Field(
        default=None, description="Only for a payment opened here by a service; an order's payment keeps its own."
    )


class PaymentInitiated(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "paymentId": "pay_8x2kq4m7w1zp",
                "paymentUrl": "http://localhost:8000/api/v1/payments/sandbox/pay_8x2kq4m7w1zp",
                "status": "PENDING",
            }
        )
    }

    payment_id: str
    payment_url: str | None
    status: str


class RefundRead(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "refundId": "rf_3h7d9k2m4n6p",
                "amount": 499.00,
                "status": "SUCCEEDED",
                "reason": "Cancelled by the buyer",
                "createdAt": "2026-11-26T10:15:00Z",
            }
        )
    }

    refund_id: str
    amount: Amount
    status: str
    reason: str | None
    created_at: datetime


class PaymentRead(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "paymentId": "pay_8x2kq4m7w1zp",
                "orderId": "ord_20261126_0001",
                "userId": "u_5k2m8q1w3e7r",
                "paymentProvider": "sandbox",
                "status": "CAPTURED",
                "amount": 999.00,
                "currency": "INR",
                "refundedAmount": 0.00,
                "paymentUrl": None,
                "providerTransactionId": "sbx_txn_4f1c2a9e",
                "failureReason": None,
                "refunds": [],
                "capturedAt": "2026-11-26T10:05:00Z",
                "createdAt": "2026-11-26T10:00:00Z",
                "updatedAt": "2026-11-26T10:05:00Z",
            }
        )
    }

    payment_id: str
    order_id: str
    user_id: str
    payment_provider: str
    status: str
    amount: Amount
    currency: str
    refunded_amount: Amount
    payment_url: str | None = Field(description="Where the buyer pays, while the payment is pending.")
    provider_transaction_id: str | None
    failure_reason: str | None
    refunds: list[RefundRead]
    captured_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookReceived(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples({"received": True, "outcome": "CAPTURED", "paymentId": "pay_8x2kq4m7w1zp"})
    }

    received: bool = True
    outcome: str = Field(
        description="CAPTURED, CAPTURED_LATE, FAILED, REFUNDED, DUPLICATE, UNMATCHED, AMOUNT_MISMATCH, "
        "NOT_DOWNGRADED, ALREADY_CAPTURED, ALREADY_FAILED, KNOWN_REFUND or IGNORED."
    )
    payment_id: str | None
