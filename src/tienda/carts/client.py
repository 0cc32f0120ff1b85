"""What other modules may ask of carts (orders: the buyer's lines at checkout, and emptying
the cart once the order holds them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tienda.carts.store import Owner
from tienda.carts.wiring import cart_service
from tienda.platform.runtime import Platform


@dataclass(frozen=True)
class CartLine:
    product_id: str
    variant_id: str | None
    quantity: int


@dataclass(frozen=True)
class CheckoutCart:
    cart_id: str
    lines: list[CartLine]
    """Oldest first; quantities only: prices are the catalog's, read by whoever prices them."""


class CartsClient(Protocol):
    async def cart_of(self, user_id: str) -> CheckoutCart | None:
        """The user's cart, or None when they have none (or an empty one)."""
        ...

    async def remove_lines(self, user_id: str, lines: list[CartLine]) -> None:
        """Take these lines (at most these quantities) out of the user's cart: what an order now holds.
        Lines the buyer changed meanwhile keep what was added since."""
        ...


class InProcessCartsClient:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def cart_of(self, user_id: str) -> CheckoutCart | None:
        service = cart_service(self.platform)
        stored = await service.store.load(Owner(user_id=user_id), now=service.clock.now())
        if stored is None or not stored.lines:
            return None
        return CheckoutCart(
            cart_id=stored.cart_id,
            lines=[CartLine(line.key.product_id, line.key.variant_id, line.quantity) for line in stored.lines],
        )

    async def remove_lines(self, user_id: str, lines: list[CartLine]) -> None:
        await cart_service(self.platform).take_out(
            Owner(user_id=user_id), [(line.product_id, line.variant_id, line.quantity) for line in lines]
        )


def in_process_client(platform: Platform) -> InProcessCartsClient:
    return InProcessCartsClient(platform)
