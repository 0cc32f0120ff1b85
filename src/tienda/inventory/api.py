"""Routes of inventory (SEED.md 5.4): stock per product, reserve / release / commit for the
order service (or an admin), adjust for admins."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from tienda.inventory.schemas import (
    AdjustRequest,
    CommitRequest,
    ProductStock,
    ReleaseRequest,
    ReservationRead,
    ReserveRequest,
)
from tienda.inventory.service import InventoryService
from tienda.inventory.wiring import inventory_service
from tienda.platform.auth import Admin
from tienda.platform.auth import Service as ServiceCaller
from tienda.platform.db import Database, UnitOfWork
from tienda.platform.deps import unit_of_work
from tienda.platform.errors import error_responses

router = APIRouter(prefix="/inventory", tags=["inventory"])


async def _service(request: Request) -> InventoryService:
    return inventory_service(request.app.state.platform)


Service = Annotated[InventoryService, Depends(_service)]
ReadUow = Annotated[UnitOfWork, Depends(unit_of_work("inventory", readonly=True))]


def _db(request: Request) -> Database:
    db: Database = request.app.state.platform.db("inventory")
    return db


@router.post(
    "/reserve",
    summary="Reserve stock for an order (service or admin)",
    description="All or nothing: every item is reserved, or none is and 409 `INSUFFICIENT_STOCK` names the "
    "short items. Idempotent by `orderId`: asking again returns what the order holds. A reservation expires "
    "(15 minutes by default) unless committed.",
    response_model=ReservationRead,
    responses=error_responses(400, 401, 403, 409),
)
async def reserve(body: ReserveRequest, request: Request, _caller: ServiceCaller, service: Service) -> ReservationRead:
    ttl = timedelta(seconds=body.ttl_seconds) if body.ttl_seconds else None
    return await service.committed(
        _db(request), lambda uow: service.reserve(uow, order_id=body.order_id, items=body.items, ttl=ttl)
    )


@router.post(
    "/release",
    summary="Release an order's reserved stock (service or admin)",
    description="Everything the order holds, or only the units named in `items`. Releasing what is already "
    "released changes nothing.",
    response_model=ReservationRead,
    responses=error_responses(400, 401, 403, 404),
)
async def release(body: ReleaseRequest, request: Request, _caller: ServiceCaller, service: Service) -> ReservationRead:
    return await service.committed(
        _db(request), lambda uow: service.release(uow, order_id=body.order_id, items=body.items)
    )


@router.post(
    "/commit",
    summary="Commit an order's reservation: the units are sold (service or admin)",
    description="Reserved units leave the stock. Idempotent; 409 when the reservation was released or expired.",
    response_model=ReservationRead,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def commit(body: CommitRequest, request: Request, _caller: ServiceCaller, service: Service) -> ReservationRead:
    return await service.committed(_db(request), lambda uow: service.commit(uow, order_id=body.order_id))


@router.post(
    "/adjust",
    summary="Restock or correct stock (admin)",
    description="`delta` is added to the stock (negative for a correction) with a `reason` kept in the audit "
    "trail; stock never falls below what is reserved (409). The first adjust of an item creates it.",
    response_model=ProductStock,
    responses=error_responses(400, 401, 403, 409),
)
async def adjust(body: AdjustRequest, request: Request, admin: Admin, service: Service) -> ProductStock:
    return await service.committed(
        _db(request),
        lambda uow: service.adjust(
            uow,
            product_id=body.product_id,
            variant_id=body.variant_id,
            delta=body.delta,
            reason=body.reason,
            threshold=body.threshold,
            actor=admin.subject,
        ),
    )


@router.get(
    "/reservations/{orderId}",
    summary="What an order holds (service or admin)",
    response_model=ReservationRead,
    responses=error_responses(401, 403, 404),
)
async def reservation(orderId: str, _caller: ServiceCaller, service: Service, uow: ReadUow) -> ReservationRead:
    return await service.reservation(uow, order_id=orderId)


@router.get(
    "/{productId}",
    summary="Stock of a product",
    description="Per variant and in total: `stockCount`, `reserved`, `available` (= stock - reserved, never negative).",
    response_model=ProductStock,
    responses=error_responses(404),
)
async def stock(productId: str, service: Service, uow: ReadUow) -> ProductStock:
    return await service.stock(uow, product_id=productId)
