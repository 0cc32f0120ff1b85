"""What other modules may ask of payments: orders opens an order's payment, refunds it, and
gives up on it when the order stops waiting."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from pydantic import Field, TypeAdapter, with_config

from tienda.payments.domain import PaymentStatus
from tienda.payments.errors import GatewayUnavailable, NotRefundable, PaymentNotFound, RefundTooLarge
from tienda.payments.wiring import payment_service
from tienda.platform.errors import ErrorDetail
from tienda.platform.http import Refused, Remote, segment
from tienda.platform.money import WireAmount
from tienda.platform.runtime import Platform
from tienda.platform.schemas import WIRE, Schema

DECLINED = "PAYMENT_DECLINED"
NOTHING_TO_REFUND = "NOTHING_TO_REFUND"
REFUND_REFUSED = "REFUND_EXCEEDS_CAPTURED"
REFUND_FAILED = "REFUND_FAILED"
"""Codes by which `/internal/payments` says `PaymentDeclined`, `NothingToRefund` (409),
`RefundRefused` (409) and `RefundFailed` (424: the gateway failed, not payments)."""

GATEWAY_CALL_TIMEOUT = 40.0
"""Seconds to wait for a call that goes on to the gateway (which is given 30 s)."""


@with_config(WIRE)
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


class Initiate(Schema):
    user_id: str
    amount: WireAmount
    currency: str = Field(min_length=3, max_length=3)
    customer_email: str | None = None


class RefundAsk(Schema):
    amount: WireAmount | None = None
    request_key: str = Field(min_length=1, max_length=255)
    reason: str | None = None


class Refunded(Schema):
    refunded_amount: WireAmount


class PaymentStatusRead(Schema):
    status: str | None


PAYMENT = TypeAdapter(PaymentInfo)


class HttpPaymentsClient:
    """The payments service's `/internal/payments` routes (payments/internal.py). Every call
    is retried: `initiate` is idempotent by order id (asked again, the same payment), `refund`
    by request key, and `expire` only ever moves a PENDING payment to FAILED."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    async def initiate(
        self, *, order_id: str, user_id: str, amount: Decimal, currency: str, customer_email: str | None
    ) -> PaymentInfo:
        body = Initiate(user_id=user_id, amount=amount, currency=currency, customer_email=customer_email)
        try:
            response = await self.remote.call(
                "POST",
                self._path(order_id, "initiate"),
                body=body.model_dump_json(by_alias=True).encode(),
                idempotent=True,
                time_limit=GATEWAY_CALL_TIMEOUT,
            )
        except Refused as refused:
            if refused.code == DECLINED:
                raise PaymentDeclined(refused.message) from refused
            raise
        return PAYMENT.validate_json(response.content)

    async def refund(self, *, order_id: str, amount: Decimal | None, request_key: str, reason: str | None) -> Decimal:
        body = RefundAsk(amount=amount, request_key=request_key, reason=reason)
        try:
            response = await self.remote.call(
                "POST",
                self._path(order_id, "refund"),
                body=body.model_dump_json(by_alias=True).encode(),
                idempotent=True,
                time_limit=GATEWAY_CALL_TIMEOUT,
            )
        except Refused as refused:
            if refused.code == NOTHING_TO_REFUND:
                raise NothingToRefund(refused.message) from refused
            if refused.code == REFUND_REFUSED:
                raise RefundRefused(refused.message, refused.details) from refused
            if refused.code == REFUND_FAILED:
                raise RefundFailed(refused.message) from refused
            raise
        return Refunded.model_validate_json(response.content).refunded_amount

    async def expire(self, *, order_id: str) -> str | None:
        response = await self.remote.call("POST", self._path(order_id, "expire"), idempotent=True)
        return PaymentStatusRead.model_validate_json(response.content).status

    @staticmethod
    def _path(order_id: str, action: str) -> str:
        return f"/internal/payments/orders/{segment(order_id)}/{action}"


def payments_client(platform: Platform) -> PaymentsClient:
    """Payments as this process reaches them: in process, or over HTTP."""
    return platform.client("payments", in_process=InProcessPaymentsClient, http=HttpPaymentsClient)
