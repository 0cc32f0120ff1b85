"""DTOs of notifications, camelCase on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator

from tienda.notifications.domain import Channel, NotificationType, Status, masked
from tienda.platform.schemas import ReadSchema, Schema, examples

_ORDER_PAYLOAD = {
    "orderId": "ord_20261125_0042",
    "currency": "INR",
    "totalAmount": "1177.82",
    "paymentMethod": "COD",
    "items": [
        {"name": "Men's T-Shirt (red, M)", "sku": "TSHIRT-RED-M", "quantity": 2, "unitPrice": "499.00"},
    ],
}


class SendRequest(Schema):
    """What to send to whom. The payload carries what the type's templates show (see each
    type's example); the recipient's name is filled in from their profile."""

    model_config = Schema.model_config | {
        "json_schema_extra": examples(
            {"userId": "u_8f3k2m9x7q1w", "type": "ORDER_CONFIRMATION", "payload": _ORDER_PAYLOAD},
            {
                "userId": "u_8f3k2m9x7q1w",
                "type": "ORDER_SHIPPED",
                "channel": "SMS",
                "payload": _ORDER_PAYLOAD | {"trackingNumber": "DTDC123456789IN"},
            },
            {"userId": "u_8f3k2m9x7q1w", "type": "PASSWORD_RESET_OTP", "payload": {"code": "482913", "minutes": 10}},
            {"userId": "u_8f3k2m9x7q1w", "type": "WELCOME", "payload": {}},
            {
                "type": "LOW_STOCK",
                "payload": {
                    "productId": "p_4k2m9x7q3w8e",
                    "variantId": "v_9x7q3w8e4k2m",
                    "available": 3,
                    "threshold": 5,
                },
            },
        )
    }

    user_id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="The recipient. Left out only for LOW_STOCK, which then goes to every admin."
    )
    type: NotificationType
    payload: dict[str, Any] = Field(default_factory=dict)
    channel: Channel | None = Field(
        default=None,
        description="Only this channel. Left out: e-mail, plus SMS for the types that have one "
        "(ORDER_CONFIRMATION, ORDER_SHIPPED, ORDER_DELIVERED, PASSWORD_RESET_OTP) when the user has a phone.",
    )


class NotificationRead(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "notificationId": "ntf_4k2m9x7q3w8e",
                "userId": "u_8f3k2m9x7q1w",
                "recipient": "asha@example.com",
                "type": "ORDER_CONFIRMATION",
                "channel": "EMAIL",
                "status": "SENT",
                "payload": _ORDER_PAYLOAD | {"fullName": "Asha Rao"},
                "attempts": 1,
                "nextAttemptAt": None,
                "lastError": None,
                "sentAt": "2026-11-25T10:00:01Z",
                "createdAt": "2026-11-25T10:00:00Z",
                "updatedAt": "2026-11-25T10:00:01Z",
            },
            {
                "notificationId": "ntf_7q3w8e4k2m9x",
                "userId": "u_8f3k2m9x7q1w",
                "recipient": "+919876543210",
                "type": "PASSWORD_RESET_OTP",
                "channel": "SMS",
                "status": "PENDING",
                "payload": {"code": "******", "minutes": 10, "fullName": "Asha Rao"},
                "attempts": 2,
                "nextAttemptAt": "2026-11-25T10:01:00Z",
                "lastError": "ConnectionRefusedError(111, 'Connection refused')",
                "sentAt": None,
                "createdAt": "2026-11-25T10:00:00Z",
                "updatedAt": "2026-11-25T10:00:30Z",
            },
        )
    }

    notification_id: str
    user_id: str | None
    recipient: str = Field(description="The e-mail address or phone number it goes to.")
    type: NotificationType
    channel: Channel
    status: Status
    payload: dict[str, Any] = Field(description="What the templates are rendered from; secrets (codes) masked.")
    attempts: int = Field(description="Send attempts made so far.")
    next_attempt_at: datetime | None = Field(description="When a PENDING one is tried (again).")
    last_error: str | None = Field(description="Why the last attempt failed.")
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @field_validator("payload", mode="after")
    @classmethod
    def _mask(cls, payload: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return masked(str(info.data.get("type", "")), payload)


class SendResult(ReadSchema):
    model_config = ReadSchema.model_config | {
        "json_schema_extra": examples(
            {
                "notifications": [
                    {
                        "notificationId": "ntf_4k2m9x7q3w8e",
                        "userId": "u_8f3k2m9x7q1w",
                        "recipient": "asha@example.com",
                        "type": "WELCOME",
                        "channel": "EMAIL",
                        "status": "PENDING",
                        "payload": {"fullName": "Asha Rao"},
                        "attempts": 0,
                        "nextAttemptAt": "2026-11-25T10:00:00Z",
                        "lastError": None,
                        "sentAt": None,
                        "createdAt": "2026-11-25T10:00:00Z",
                        "updatedAt": "2026-11-25T10:00:00Z",
                    }
                ]
            }
        )
    }

    notifications: list[NotificationRead] = Field(
        description="One per channel and recipient; they are sent right after this answer, and tried again "
        "with backoff when sending fails."
    )
