"""Payment statuses and how a gateway's news moves them (pure rules, no I/O).

    PENDING ──captured──▶ CAPTURED ──refunds──▶ PARTIALLY_REFUNDED ──▶ REFUNDED
       │                     ▲
       └──failed/expired──▶ FAILED ──captured (late: the money was taken after all)

A failure never downgrades a captured payment; a capture after a failure is recorded (the
gateway holds the money) and the order refunds it.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    CAPTURED = "CAPTURED"
    FAILED = "FAILED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


CAPTURED_STATES = frozenset({PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})


def can_capture(status: PaymentStatus) -> bool:
    return status in (PaymentStatus.PENDING, PaymentStatus.FAILED)


def can_fail(status: PaymentStatus) -> bool:
    return status is PaymentStatus.PENDING


def after_refunds(amount: Decimal, refunded: Decimal) -> PaymentStatus:
    if refunded <= 0:
        return PaymentStatus.CAPTURED
    return PaymentStatus.REFUNDED if refunded >= amount else PaymentStatus.PARTIALLY_REFUNDED


def refundable(amount: Decimal, refunded: Decimal, pending: Decimal) -> Decimal:
    """What can still be refunded: the captured amount less refunds done or under way."""
    return max(amount - refunded - pending, Decimal("0.00"))
