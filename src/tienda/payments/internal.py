"""`/internal/payments`: the payments client protocol (client.py) for services in other processes."""

from __future__ import annotations

from fastapi import Request

from tienda.payments.client import (
    DECLINED,
    NOTHING_TO_REFUND,
    REFUND_FAILED,
    REFUND_REFUSED,
    Initiate,
    InProcessPaymentsClient,
    NothingToRefund,
    PaymentDeclined,
    PaymentInfo,
    PaymentStatusRead,
    RefundAsk,
    Refunded,
    RefundFailed,
    RefundRefused,
)
from tienda.platform.errors import AppError, Conflict
from tienda.platform.web import internal_router

router = internal_router("payments")


class GatewayFailed(AppError):
    """The gateway could not do it; payments itself is fine (so not a 5xx, which would count
    against it in its callers' circuit breakers)."""

    status = 424


def _payments(request: Request) -> InProcessPaymentsClient:
    return InProcessPaymentsClient(request.app.state.platform)


@router.post("/orders/{orderId}/initiate")
async def initiate(orderId: str, body: Initiate, request: Request) -> PaymentInfo:
    try:
        return await _payments(request).initiate(
            order_id=orderId,
            user_id=body.user_id,
            amount=body.amount,
            currency=body.currency,
            customer_email=body.customer_email,
        )
    except PaymentDeclined as declined:
        raise GatewayFailed(str(declined) or "The gateway could not open the payment", code=DECLINED) from declined


@router.post("/orders/{orderId}/refund")
async def refund(orderId: str, body: RefundAsk, request: Request) -> Refunded:
    try:
        total = await _payments(request).refund(
            order_id=orderId, amount=body.amount, request_key=body.request_key, reason=body.reason
        )
    except NothingToRefund as nothing:
        raise Conflict(str(nothing) or "Nothing to refund", code=NOTHING_TO_REFUND) from nothing
    except RefundRefused as refused:
        raise Conflict(str(refused), code=REFUND_REFUSED, details=refused.details) from refused
    except RefundFailed as failed:
        raise GatewayFailed(str(failed) or "The gateway did not take the refund", code=REFUND_FAILED) from failed
    return Refunded(refunded_amount=total)


@router.post("/orders/{orderId}/expire")
async def expire(orderId: str, request: Request) -> PaymentStatusRead:
    return PaymentStatusRead(status=await _payments(request).expire(order_id=orderId))
