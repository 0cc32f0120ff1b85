"""Routes of orders: coupons (admin) so far."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from tienda.orders.coupons import CouponService
from tienda.orders.schemas import CouponCreate, CouponRead, CouponUpdate
from tienda.orders.wiring import coupon_service
from tienda.platform.auth import Admin
from tienda.platform.db import UnitOfWork
from tienda.platform.deps import unit_of_work
from tienda.platform.errors import error_responses
from tienda.platform.pagination import Page, PageQuery

coupons = APIRouter(prefix="/coupons", tags=["coupons"])


async def _coupons(request: Request) -> CouponService:
    return coupon_service(request.app.state.platform)


Coupons = Annotated[CouponService, Depends(_coupons)]
Uow = Annotated[UnitOfWork, Depends(unit_of_work("orders"))]
ReadUow = Annotated[UnitOfWork, Depends(unit_of_work("orders", readonly=True))]


@coupons.post(
    "",
    summary="Create a coupon (admin)",
    description="PERCENT (value 0-100] or FIXED (an amount); a minimum order, a maximum discount, a validity "
    "window, total and per-buyer limits, first order only. Codes are matched case-insensitively (kept upper case).",
    status_code=status.HTTP_201_CREATED,
    response_model=CouponRead,
    responses=error_responses(400, 401, 403, 409),
)
async def create_coupon(body: CouponCreate, _admin: Admin, service: Coupons, uow: Uow) -> CouponRead:
    coupon = await service.create(uow, data=body)
    await uow.commit()
    return coupon


@coupons.get(
    "",
    summary="List coupons (admin), newest first",
    response_model=Page[CouponRead],
    responses=error_responses(400, 401, 403),
)
async def list_coupons(
    _admin: Admin,
    service: Coupons,
    uow: ReadUow,
    paging: PageQuery,
    active: Annotated[bool | None, Query(description="Only active (true) or inactive (false) ones.")] = None,
) -> Page[CouponRead]:
    return await service.page(uow, page=paging.page, size=paging.size, active=active)


@coupons.get(
    "/{couponId}", summary="Get a coupon (admin)", response_model=CouponRead, responses=error_responses(401, 403, 404)
)
async def get_coupon(couponId: str, _admin: Admin, service: Coupons, uow: ReadUow) -> CouponRead:
    return await service.get(uow, coupon_id=couponId)


@coupons.patch(
    "/{couponId}",
    summary="Change a coupon (admin)",
    description="Only the fields sent change; `isActive: false` retires a coupon that has been used.",
    response_model=CouponRead,
    responses=error_responses(400, 401, 403, 404),
)
async def update_coupon(couponId: str, body: CouponUpdate, _admin: Admin, service: Coupons, uow: Uow) -> CouponRead:
    coupon = await service.update(uow, coupon_id=couponId, changes=body)
    await uow.commit()
    return coupon


@coupons.delete(
    "/{couponId}",
    summary="Delete a coupon never used (admin)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 409),
)
async def delete_coupon(couponId: str, _admin: Admin, service: Coupons, uow: Uow) -> Response:
    await service.delete(uow, coupon_id=couponId)
    await uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
