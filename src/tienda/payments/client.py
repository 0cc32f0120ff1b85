"""What other modules may ask of payments: orders opens an order's payment, refunds it, and
gives up on it when the order stops waiting."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from tienda.payments.domain import PaymentStatus
from tienda.payments.errors import GatewayUnavailable, NotRefundable, PaymentNotFound, RefundTooLarge
from tienda.payments.wiring import payment_service
from tienda.platform.errors import ErrorDetail
from tienda.platform.runtime import Platform


@dataclass(frozen=True)
class PaymentInfo:
    payment_id: str
    payment_url: str | None
    status: str


class PaymentDeclined(Exception):
    """The gateway could not open the payment; nothing was charged."""


class NothingToRefund(Exception):
    """The order's payment has nothing captured left to refund (or there is no payment)."""


class RefundRefused(Exception):
    """More than what is left of the payment was asked for."""

    def __init__(self, message: str, details: list[ErrorDetail] | None) -> None:
        super().__init__(message)
        self.details = details


class RefundFailed(Exception):
    """The gateway did not take the refund; it stays pending and is sent again later."""


class PaymentsClient(Protocol):
    async def initiate(
        self, *, order_id: str, user_id: str, amount: Decimal, currency: str, customer_email: str | None
    ) -> PaymentInfo:
        """The order's payment at the configured gateway (the same one when asked again);
        `PaymentDeclined` when the gateway cannot open it."""
        ...

    async def refund(self, *, order_id: str, amount: Decimal | None, request_key: str, reason: str | None) -> Decimal:
        """Refund the order's payment (None: what is left) once per `request_key`; returns the
        payment's refunded total after. `NothingToRefund`, `RefundRefused` (too much),
        `RefundFailed` (the gateway did not answer)."""
        ...

    async def expire(self, *, order_id: str) -> str | None:
        """Stop waiting for the order's payment; its status after (CAPTURED if it won)."""
        ...


class InProcessPaymentsClient:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def initiate(
        self, *, order_id: str, user_id: str, amount: Decimal, currency: str, customer_email: str | None
    ) -> PaymentInfo:
        try:
            payment = await payment_service(self.platform).initiate(
                order_id=order_id, user_id=user_id, amount=amount, currency=currency, customer_email=customer_email
            )
        except GatewayUnavailable as exc:
            raise PaymentDeclined(str(exc)) from exc
        return PaymentInfo(payment.payment_id, payment.payment_url, payment.status)

    async def refund(self, *, order_id: str, amount: Decimal | None, request_key: str, reason: str | None) -> Decimal:
        service = payment_service(self.platform)
        try:
            await service.refund(order_id=order_id, amount=amount, request_key=request_key, reason=reason)
        except (PaymentNotFound, NotRefundable) as exc:
            raise NothingToRefund(str(exc)) from exc
        except RefundTooLarge as exc:
            raise RefundRefused(exc.message, exc.details) from exc
        except GatewayUnavailable as exc:
            raise RefundFailed(str(exc)) from exc
        async with self.platform.db("payments").reader() as uow:
            payment = await service.of_order(uow, order_id=order_id)
        return payment.refunded_amount if payment is not None else Decimal("0.00")

    async def expire(self, *, order_id: str) -> str | None:
        status: PaymentStatus | None = await payment_service(self.platform).expire(order_id=order_id)
        return status.value if status is not None else None


def in_process_client(platform: Platform) -> InProcessPaymentsClient:
    return InProcessPaymentsClient(platform)
