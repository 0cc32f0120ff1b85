"""Pure rules of orders: the lifecycle (one state machine, every move checked here) and
pricing (subtotal, coupon discount, tax, shipping, total). No I/O.

Pricing, in order (DESIGN.md section 5):
1. Each line costs unit price x quantity, rounded half-up to the cent; the subtotal is their sum.
2. A coupon's discount: PERCENT of the subtotal (rounded half-up) or a FIXED amount, capped by
   the coupon's maximum discount and by the subtotal itself; only when the subtotal reaches the
   coupon's minimum order.
3. The discount is shared among the lines in proportion to their totals (each share rounded
   half-up, the last line taking what rounding left over, so the shares add up exactly).
4. Tax per line on (line total - its share of the discount) at the line's category rate (the
   default rate unless the category, or one of its ancestors, has its own), rounded half-up
   per line. Prices exclude tax; shipping is not taxed.
5. Shipping: a flat fee, free when the discounted subtotal reaches the free-shipping threshold.
6. Total = subtotal - discount + tax + shipping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from tienda.platform.money import quantize

ZERO = Decimal("0.00")


class OrderStatus(StrEnum):
    CREATED = "CREATED"
    CONFIRMED = "CONFIRMED"
    PACKED = "PACKED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


S = OrderStatus
MOVES: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    S.CREATED: frozenset({S.CONFIRMED, S.FAILED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.PACKED, S.CANCELLED, S.REFUNDED}),
    S.PACKED: frozenset({S.SHIPPED, S.CANCELLED, S.REFUNDED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.REFUNDED}),
    S.DELIVERED: frozenset({S.REFUNDED}),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}
"""Every legal move of an order; anything else is refused (409)."""

PAID = frozenset({S.CONFIRMED, S.PACKED, S.SHIPPED, S.DELIVERED})
"""The states in which the buyer has paid: leaving them by cancel or refund gives money back."""


class IllegalMove(Exception):
    def __init__(self, current: OrderStatus, wanted: OrderStatus) -> None:
        super().__init__(f"An order {current.value} cannot become {wanted.value}")
        self.current, self.wanted = current, wanted


def move(current: OrderStatus, wanted: OrderStatus) -> OrderStatus:
    """`wanted`, if the lifecycle allows it from `current`; raises `IllegalMove` otherwise."""
    if wanted not in MOVES[current]:
        raise IllegalMove(current, wanted)
    return wanted


def can_move(current: OrderStatus, wanted: OrderStatus) -> bool:
    return wanted in MOVES[current]


# -- pricing ---------------------------------------------------------------------------------


class CouponKind(StrEnum):
    PERCENT = "PERCENT"
    FIXED = "FIXED"


@dataclass(frozen=True)
class CouponTerms:
    """What a coupon takes off; whether it may be used at all (window, limits) is checked
    before pricing, against stored counts."""

    kind: CouponKind
    value: Decimal
    """Percent (e.g. 10 for 10%) or an amount."""
    min_order: Decimal = ZERO
    max_discount: Decimal | None = None


@dataclass(frozen=True)
class LineIn:
    unit_price: Decimal
    quantity: int
    tax_rate: Decimal


@dataclass(frozen=True)
class PricedLine:
    total: Decimal
    discount: Decimal
    tax: Decimal


@dataclass(frozen=True)
class Pricing:
    lines: tuple[PricedLine, ...]
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    shipping: Decimal
    total: Decimal


@dataclass(frozen=True)
class ShippingTerms:
    fee: Decimal
    free_from: Decimal | None
    """Discounted subtotal from which shipping is free; None: never free."""


def check_coupon_terms(kind: CouponKind, value: Decimal, starts_at: datetime | None, ends_at: datetime | None) -> None:
    """Raises `ValueError` saying what is wrong with a coupon's terms."""
    if kind is CouponKind.PERCENT and not 0 < value <= 100:
        raise ValueError("a PERCENT coupon's value is a percentage above 0 and at most 100")
    if kind is CouponKind.FIXED and value <= 0:
        raise ValueError("a FIXED coupon's value is an amount above 0")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValueError("endsAt must be after startsAt")


def coupon_discount(terms: CouponTerms, subtotal: Decimal) -> Decimal:
    """What the coupon takes off this subtotal (0 below its minimum order)."""
    if subtotal < terms.min_order:
        return ZERO
    percent = terms.kind is CouponKind.PERCENT
    discount = quantize(subtotal * terms.value / 100) if percent else quantize(terms.value)
    if terms.max_discount is not None:
        discount = min(discount, terms.max_discount)
    return min(discount, subtotal)


def share(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """`amount` split in proportion to `weights`, each share rounded half-up, the last taking
    the rounding's remainder so the shares add up to `amount` exactly."""
    total = sum(weights, ZERO)
    if not weights or total == 0:
        return [ZERO for _ in weights]
    shares = [quantize(amount * w / total) for w in weights[:-1]]
    return [*shares, quantize(amount - sum(shares, ZERO))]


def price(lines: Sequence[LineIn], *, coupon: CouponTerms | None, shipping: ShippingTerms) -> Pricing:
    totals = [quantize(line.unit_price * line.quantity) for line in lines]
    subtotal = sum(totals, ZERO)
    discount = coupon_discount(coupon, subtotal) if coupon else ZERO
    shares = share(discount, totals)
    priced = tuple(
        PricedLine(total=t, discount=d, tax=quantize((t - d) * line.tax_rate))
        for line, t, d in zip(lines, totals, shares, strict=True)
    )
    tax = sum((p.tax for p in priced), ZERO)
    goods = subtotal - discount
    free = shipping.free_from is not None and goods >= shipping.free_from
    shipping_fee = ZERO if free or not lines else quantize(shipping.fee)
    return Pricing(
        lines=priced,
        subtotal=subtotal,
        discount=discount,
        tax=tax,
        shipping=shipping_fee,
        total=subtotal - discount + tax + shipping_fee,
    )


def tax_rate(category_path: Sequence[str], *, default: Decimal, overrides: Mapping[str, Decimal]) -> Decimal:
    """The rate of a product whose category and its ancestors are `category_path` (nearest
    first, by id or slug): the nearest override, else the default."""
    for category in category_path:
        if category in overrides:
            return overrides[category]
    return default
