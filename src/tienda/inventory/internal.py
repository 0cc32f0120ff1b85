"""`/internal/inventory`: the inventory client protocol (client.py) for services in other processes."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request, Response

from tienda.inventory.client import (
    STOCK_GONE,
    STOCK_SHORT,
    Held,
    InProcessInventoryClient,
    Reserve,
    StockGone,
    StockLevel,
    StockQuery,
    StockShort,
)
from tienda.platform.errors import Conflict, ErrorDetail
from tienda.platform.web import internal_router

router = internal_router("inventory")


def _inventory(request: Request) -> InProcessInventoryClient:
    return InProcessInventoryClient(request.app.state.platform)


@router.post("/available")
async def available(body: StockQuery, request: Request) -> list[StockLevel]:
    levels = await _inventory(request).available(body.product_ids)
    return [StockLevel(product_id=p, variant_id=v, available=n) for (p, v), n in levels.items()]


@router.post("/reservations/{orderId}")
async def reserve(orderId: str, body: Reserve, request: Request) -> Held:
    try:
        expires_at = await _inventory(request).reserve(orderId, body.lines, ttl=timedelta(seconds=body.ttl_seconds))
    except StockShort as short:
        raise Conflict(
            "Not enough stock for every item; nothing was reserved",
            code=STOCK_SHORT,
            details=[ErrorDetail(field=s.field, message=s.message) for s in short.lines],
        ) from short
    return Held(expires_at=expires_at)


@router.post("/reservations/{orderId}/release", status_code=204)
async def release(orderId: str, request: Request) -> Response:
    await _inventory(request).release(orderId)
    return Response(status_code=204)


@router.post("/reservations/{orderId}/commit", status_code=204)
async def commit(orderId: str, request: Request) -> Response:
    try:
        await _inventory(request).commit(orderId)
    except StockGone as gone:
        raise Conflict("The order holds nothing any more to sell", code=STOCK_GONE) from gone
    return Response(status_code=204)


@router.post("/reservations/{orderId}/give-back", status_code=204)
async def give_back(orderId: str, request: Request) -> Response:
    await _inventory(request).give_back(orderId)
    return Response(status_code=204)
