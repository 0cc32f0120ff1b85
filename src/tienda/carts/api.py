"""Routes of carts (SEED.md 5.3). A signed-in user's cart is theirs; a guest gets a cart token
(`X-Cart-Token`) on their first write, sends it back with every request, and merges the cart
into their own after signing in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status

from tienda.carts.schemas import CartItemIn, CartMergeIn, CartRead
from tienda.carts.service import CartService
from tienda.carts.store import Owner
from tienda.carts.wiring import cart_service
from tienda.platform.auth import CurrentUser, OptionalUser
from tienda.platform.errors import BadRequest, error_responses

router = APIRouter(prefix="/carts", tags=["carts"])

CART_TOKEN_HEADER = "X-Cart-Token"
_TOKEN_OUT: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            CART_TOKEN_HEADER: {
                "description": "A guest's cart token (sent on every guest write, with a renewed expiry); "
                "send it back in this header.",
                "schema": {"type": "string"},
            }
        }
    }
}


def _service(request: Request) -> CartService:
    """The module's service, looked up by each route itself rather than as a FastAPI dependency:
    every dependency costs its solving on each request (its own parameters gathered, its cache
    key made), and a cart write is the shop's most frequent one (~6% of its CPU, measured)."""
    return cart_service(request.app.state.platform)


CartToken = Annotated[
    str | None,
    Header(
        alias=CART_TOKEN_HEADER,
        description="A guest's cart token, as a guest write answered it. Ignored when signed in.",
    ),
]


def _owner(service: CartService, user: OptionalUser, token: str | None) -> Owner | None:
    if user is not None:
        return Owner(user_id=user.subject)
    return service.guest(token) if token else None


@router.get(
    "",
    summary="The current cart (the signed-in user's, or the guest's of X-Cart-Token)",
    description="Lines with today's prices and stock; a line that cannot be bought as it is (unpublished, out "
    "of stock, fewer in stock than asked, gone) is flagged by `status` and `available: false` and left out of "
    "`totalAmount`. Without a user or a token: an empty cart.",
    response_model=CartRead,
    responses=error_responses(401),
)
async def get_cart(request: Request, user: OptionalUser, token: CartToken = None) -> CartRead:
    service = _service(request)
    return await service.view(_owner(service, user, token))


@router.post(
    "/items",
    summary="Set a line's quantity (0 removes it)",
    description="Sets, not adds: sending the same request twice leaves the same cart. 1..99 units per line, "
    "at most 100 lines, never more than is in stock (409 `INSUFFICIENT_STOCK`). A guest's first write starts a "
    "cart and answers its token in `X-Cart-Token`.",
    response_model=CartRead,
    responses=_TOKEN_OUT | error_responses(400, 401, 404, 409),
)
async def set_item(
    body: CartItemIn, request: Request, response: Response, user: OptionalUser, token: CartToken = None
) -> CartRead:
    service = _service(request)
    owner = _owner(service, user, token) or service.new_guest()
    cart = await service.set_item(owner, product_id=body.product_id, variant_id=body.variant_id, quantity=body.quantity)
    if owner.guest_cart_id is not None:
        response.headers[CART_TOKEN_HEADER] = service.guest_token(owner)
    return cart


@router.delete(
    "/items/{itemId}",
    summary="Remove a line",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 404),
)
async def remove_item(itemId: str, request: Request, user: OptionalUser, token: CartToken = None) -> Response:
    service = _service(request)
    await service.remove_item(_owner(service, user, token), item_id=itemId)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/merge",
    summary="Merge a guest's cart into the signed-in user's",
    description="Call after signing in with the token the guest cart had (in the body or the X-Cart-Token "
    "header). Quantities of the same item add up, capped by what is in stock; the guest cart is then gone, so "
    "merging again changes nothing.",
    response_model=CartRead,
    responses=error_responses(400, 401),
)
async def merge(
    request: Request, user: CurrentUser, body: CartMergeIn | None = None, token: CartToken = None
) -> CartRead:
    service = _service(request)
    cart_token = (body.cart_token if body else None) or token
    if not cart_token:
        raise BadRequest("Send the guest's cartToken (body) or X-Cart-Token (header)", code="CART_TOKEN_REQUIRED")
    return await service.merge(Owner(user_id=user.subject), cart_token=cart_token)
