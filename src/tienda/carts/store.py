"""The one interface of both cart stores (Redis and SQL), and what they hold.

A store keeps lines and quantities only; prices, names and stock are read from the catalog
and inventory each time a cart is shown, so a cart never shows a stale price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Owner:
    """Whose cart: a signed-in user's (by user id) or a guest's (by the cart id in the token)."""

    user_id: str | None = None
    guest_cart_id: str | None = None

    def __post_init__(self) -> None:
        if (self.user_id is None) == (self.guest_cart_id is None):
            raise ValueError("a cart belongs to a user or to a guest cart token")


@dataclass(frozen=True)
class LineKey:
    product_id: str
    variant_id: str | None


@dataclass(frozen=True)
class StoredLine:
    item_id: str
    key: LineKey
    quantity: int
    added_at: datetime


@dataclass(frozen=True)
class StoredCart:
    cart_id: str
    lines: list[StoredLine]
    """Oldest first."""


@dataclass(frozen=True)
class MergeCap:
    """How far a merged line may grow: to `cap` units, but never below what the user had."""

    key: LineKey
    cap: int


class CartStore(Protocol):
    async def load(self, owner: Owner, *, now: datetime) -> StoredCart | None:
        """The cart, or None when there is none (never written, emptied guest cart gone, expired)."""
        ...

    async def line_keys(self, owner: Owner, *, now: datetime) -> list[LineKey]:
        """The keys of the cart's lines, in no order (none when there is no cart): what a write
        needs to know before it is made, without reading the rest of each line."""
        ...

    async def set_quantity(
        self,
        owner: Owner,
        key: LineKey,
        quantity: int,
        *,
        now: datetime,
        new_cart_id: str,
        new_item_id: str,
        max_lines: int,
        expires_at: datetime | None,
    ) -> StoredCart:
        """Set one line's quantity (0 removes it), creating the cart (`new_cart_id`) or the line
        (`new_item_id`) when needed, atomically. Raises `CartFull` when a new line would make
        more than `max_lines`. `expires_at` (guests) is pushed forward on every write."""
        ...

    async def take_out(self, owner: Owner, lines: list[tuple[LineKey, int]], *, now: datetime) -> None:
        """Less of these lines by these quantities, atomically (a line down to nothing goes);
        lines the cart does not have, or no cart, change nothing."""
        ...

    async def remove(self, owner: Owner, item_id: str, *, now: datetime) -> bool:
        """Remove the line with this id; False when the cart has no such line."""
        ...

    async def merge(
        self,
        source: Owner,
        into: Owner,
        caps: list[MergeCap],
        *,
        now: datetime,
        new_cart_id: str,
        default_cap: int,
        max_lines: int,
    ) -> StoredCart | None:
        """Fold the source cart into `into` and delete the source, atomically: a line both
        have gets the sum, capped (see `MergeCap`; `default_cap` for a line not in `caps`);
        the source's other lines move over, while the cart has room for them."""
        ...

    async def purge_expired(self, *, now: datetime, limit: int = 1000) -> int:
        """Delete guest carts past their expiry; how many went."""
        ...
