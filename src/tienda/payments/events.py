"""Events payments publishes; orders consumes them to carry on its checkout saga."""

from __future__ import annotations

from typing import Any

from tienda.payments.models import Payment

PAYMENT_CAPTURED = "payment.captured"
PAYMENT_FAILED = "payment.failed"
PAYMENT_REFUNDED = "payment.refunded"


def payment_payload(payment: Payment) -> dict[str, Any]:
    return {
        "paymentId": payment.payment_id,
        "orderId": payment.order_id,
        "userId": payment.user_id,
        "provider": payment.payment_provider,
        "status": payment.status,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "refundedAmount": str(payment.refunded_amount),
        "reason": payment.failure_reason,
    }
