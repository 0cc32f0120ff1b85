"""Routes of orders (SEED.md 5.5) and coupons."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from tienda.orders.checkout import Checkout
from tienda.orders.coupons import CouponService
from tienda.orders.domain import OrderStatus
from tienda.orders.schemas import (
    CancelRequest,
    CouponCreate,
    CouponRead,
    CouponUpdate,
    OrderCreate,
    OrderRead,
    RefundRequest,
    StatusChange,
)
from tienda.orders.service import OrderService
from tienda.orders.wiring import checkout, coupon_service, order_service
from tienda.platform.auth import Admin, CurrentUser
from tienda.platform.db import UnitOfWork
from tienda.platform.deps import unit_of_work
from tienda.platform.errors import error_responses
from tienda.platform.pagination import Page, PageQuery
from tienda.platform.web import absolute_url

orders = APIRouter(prefix="/orders", tags=["orders"])
coupons = APIRouter(prefix="/coupons", tags=["coupons"])


async def _coupons(request: Request) -> CouponService:
    return coupon_service(request.app.state.platform)


async def _checkout(request: Request) -> Checkout:
    return checkout(request.app.state.platform)


async def _orders(request: Request) -> OrderService:
    return order_service(request.app.state.platform)


Coupons = Annotated[CouponService, Depends(_coupons)]
Orders = Annotated[OrderService, Depends(_orders)]
CheckoutDep = Annotated[Checkout, Depends(_checkout)]
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


# -- orders ------------------------------------------------------------------------------


@orders.post(
    "",
    summary="Place an order from your cart",
    description="Built from the caller's cart at today's prices (never the client's), with the coupon, tax "
    "and shipping applied; the stock is reserved for it. COD: the order answers CONFIRMED. PAYMENT_GATEWAY: "
    "the order answers CREATED with its `paymentId` and the `paymentUrl` where the buyer pays; the gateway's "
    "webhook confirms it (or fails it, and the units go back) and it fails by itself at `expiresAt`. An "
    "`Idempotency-Key` makes a retry return the first answer (the same key with another body: 409).",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderRead,
    responses=error_responses(400, 401, 404, 409, 502),
)
async def place_order(
    request: Request,
    body: OrderCreate,
    user: CurrentUser,
    service: CheckoutDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> OrderRead:
    return _shown(request, await service.place(user_id=user.subject, body=body, idempotency_key=idempotency_key))


def _shown(request: Request, order: OrderRead) -> OrderRead:
    """The payment page's address in full (the sandbox's is a path of ours)."""
    if order.payment_url is not None:
        order.payment_url = absolute_url(
            request, order.payment_url, base=request.app.state.platform.settings.public_base_url
        )
    return order


@orders.get(
    "",
    summary="List orders, newest first",
    description="Your own orders; an admin sees everyone's and may filter by user, status and creation time.",
    response_model=Page[OrderRead],
    responses=error_responses(400, 401),
)
async def list_orders(
    user: CurrentUser,
    service: Orders,
    uow: ReadUow,
    paging: PageQuery,
    userId: Annotated[str | None, Query(max_length=64, description="Admin only: one buyer's orders.")] = None,
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    since: Annotated[datetime | None, Query(alias="from", description="Created at or after.")] = None,
    until: Annotated[datetime | None, Query(alias="to", description="Created before.")] = None,
) -> Page[OrderRead]:
    return await service.page(
        uow,
        caller=user,
        page=paging.page,
        size=paging.size,
        user_id=userId,
        status=status_,
        since=since,
        until=until,
    )


@orders.get(
    "/{orderId}",
    summary="Get an order (your own; an admin's any)",
    response_model=OrderRead,
    responses=error_responses(401, 404),
)
async def get_order(orderId: str, request: Request, user: CurrentUser, service: Orders, uow: ReadUow) -> OrderRead:
    return _shown(request, await service.get(uow, order_id=orderId, caller=user))


@orders.post(
    "/{orderId}/cancel",
    summary="Cancel an order",
    description="CREATED: the reserved units, the coupon and the pending payment go back. CONFIRMED or PACKED: "
    "the payment is refunded in full through its gateway and the units return to the stock. Later: 409.",
    response_model=OrderRead,
    responses=error_responses(401, 404, 409),
)
async def cancel_order(
    orderId: str, user: CurrentUser, service: Orders, body: CancelRequest | None = None
) -> OrderRead:
    return await service.cancel(order_id=orderId, caller=user, reason=body.reason if body else None)


@orders.post(
    "/{orderId}/refund",
    summary="Refund a paid order, in full or in part (admin)",
    description="Through the order's payment gateway. Without `amount`, everything not refunded yet; refunded in "
    "full, the order is REFUNDED (the units stay with the buyer: cancel a CONFIRMED or PACKED order to put them "
    "back). An `Idempotency-Key` makes a retry refund once.",
    response_model=OrderRead,
    responses=error_responses(400, 401, 403, 404, 409, 502),
)
async def refund_order(
    orderId: str,
    _admin: Admin,
    service: Orders,
    body: RefundRequest | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> OrderRead:
    body = body or RefundRequest()
    return await service.refund(
        order_id=orderId,
        amount=body.amount,
        reason=body.reason,
        request_key=idempotency_key or f"{body.amount or 'all'}:{uuid.uuid4().hex}",
    )


@orders.post(
    "/{orderId}/status",
    summary="Move an order along: PACKED, SHIPPED (tracking number), DELIVERED (admin)",
    response_model=OrderRead,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def set_order_status(orderId: str, body: StatusChange, _admin: Admin, service: Orders, uow: Uow) -> OrderRead:
    order = await service.set_status(
        uow, order_id=orderId, status=OrderStatus(body.status), tracking_number=body.tracking_number
    )
    await uow.commit()
    return order
