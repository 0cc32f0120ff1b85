"""What other modules may ask of carts (orders: the buyer's lines at checkout, and emptying
the cart once the order holds them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import TypeAdapter, with_config

from tienda.carts.store import Owner
from tienda.carts.wiring import cart_service
from tienda.platform.http import Refused, Remote, segment
from tienda.platform.runtime import Platform
from tienda.platform.schemas import WIRE, Schema

NO_CART = "CART_NOT_FOUND"
"""Code of the 404 by which `/internal/carts` says the user has no cart (or an empty one)."""


@with_config(WIRE)
@dataclass(frozen=True)
class CartLine:
    product_id: str
    variant_id: str | None
    quantity: int


@with_config(WIRE)
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


class TakeOut(Schema):
    lines: list[CartLine]


CART = TypeAdapter(CheckoutCart)


class HttpCartsClient:
    """The carts service's `/internal/carts` routes (carts/internal.py). `cart_of` is a read and
    retried; `remove_lines` subtracts quantities, so a retry after a lost answer could take
    out twice what the order holds: it is tried once (the order saga runs its step again)."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    async def cart_of(self, user_id: str) -> CheckoutCart | None:
        try:
            response = await self.remote.call("GET", f"/internal/carts/{segment(user_id)}", idempotent=True)
        except Refused as refused:
            if refused.code == NO_CART:
                return None
            raise
        return CART.validate_json(response.content)

    async def remove_lines(self, user_id: str, lines: list[CartLine]) -> None:
        body = TakeOut(lines=lines).model_dump_json(by_alias=True).encode()
        await self.remote.call("POST", f"/internal/carts/{segment(user_id)}/take-out", body=body, idempotent=False)


def carts_client(platform: Platform) -> CartsClient:
    """Carts as this process reaches them: in process, or over HTTP."""
    return platform.client("carts", in_process=InProcessCartsClient, http=HttpCartsClient)
