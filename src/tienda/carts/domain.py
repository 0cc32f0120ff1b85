"""Pure rules of carts: what a line may show and cost, and how merging adds up. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from tienda.platform.money import quantize


class LineStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    """Some, but fewer than the line's quantity, are in stock."""
    OUT_OF_STOCK = "OUT_OF_STOCK"
    UNPUBLISHED = "UNPUBLISHED"
    """The product was unpublished or (softly) deleted."""
    UNAVAILABLE = "UNAVAILABLE"
    """The product or variant no longer exists, or is priced in another currency."""


def line_status(*, exists: bool, published: bool, same_currency: bool, available: int, quantity: int) -> LineStatus:
    if not exists or not same_currency:
        return LineStatus.UNAVAILABLE
    if not published:
        return LineStatus.UNPUBLISHED
    if available <= 0:
        return LineStatus.OUT_OF_STOCK
    if available < quantity:
        return LineStatus.INSUFFICIENT_STOCK
    return LineStatus.AVAILABLE


def line_total(unit_price: Decimal | None, quantity: int) -> Decimal:
    return quantize(unit_price * quantity) if unit_price is not None else quantize(0)


@dataclass(frozen=True)
class Priced:
    status: LineStatus
    total: Decimal


def cart_total(lines: list[Priced]) -> Decimal:
    """What the lines that can be bought now cost (before coupons, tax and shipping); a
    flagged line shows its price but is not counted."""
    return quantize(sum((line.total for line in lines if line.status is LineStatus.AVAILABLE), Decimal(0)))


def merge_cap(*, available: int, max_quantity: int) -> int:
    """How many units of one item a merge may leave in the cart: as many as are in stock (up
    to the per-line limit). An item out of stock (or not for sale) is not capped by stock: its
    line moves over as it was and shows flagged."""
    return min(available, max_quantity) if available > 0 else max_quantity


def merged_quantity(mine: int | None, theirs: int, cap: int) -> int:
    """The user's line plus the guest's, capped; never less than the user already had.
    (The Redis store's merge script does the same arithmetic in Lua.)"""
    if mine is None:
        return min(theirs, cap)
    return max(mine, min(mine + theirs, cap))
