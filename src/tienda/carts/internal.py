"""`/internal/carts`: the carts client protocol (client.py) for services in other processes."""

from __future__ import annotations

from fastapi import Request, Response

from tienda.carts.client import NO_CART, CheckoutCart, InProcessCartsClient, TakeOut
from tienda.platform.errors import NotFound
from tienda.platform.web import internal_router

router = internal_router("carts")


def _carts(request: Request) -> InProcessCartsClient:
    return InProcessCartsClient(request.app.state.platform)


@router.get("/{userId}")
async def cart_of(userId: str, request: Request) -> CheckoutCart:
    cart = await _carts(request).cart_of(userId)
    if cart is None:
        raise NotFound("The user has no cart, or an empty one", code=NO_CART)
    return cart


@router.post("/{userId}/take-out", status_code=204)
async def remove_lines(userId: str, body: TakeOut, request: Request) -> Response:
    await _carts(request).remove_lines(userId, body.lines)
    return Response(status_code=204)
