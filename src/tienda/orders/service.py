"""Use cases of an order once placed: read, list, cancel, and the admin's moves along the
lifecycle (placing one is checkout.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tienda.inventory.client import InventoryClient
from tienda.orders import events, repository
from tienda.orders.coupons import CouponService
from tienda.orders.domain import IllegalMove, OrderStatus, move
from tienda.orders.errors import IllegalStatusMove, OrderNotFound
from tienda.orders.models import Order
from tienda.orders.reads import order_read
from tienda.orders.schemas import OrderRead
from tienda.platform.auth import Principal
from tienda.platform.clock import Clock
from tienda.platform.db import Database, UnitOfWork
from tienda.platform.errors import BadRequest, ErrorDetail
from tienda.platform.pagination import Page

ADMIN_MOVES = {
    OrderStatus.PACKED: events.ORDER_PACKED,
    OrderStatus.SHIPPED: events.ORDER_SHIPPED,
    OrderStatus.DELIVERED: events.ORDER_DELIVERED,
}


@dataclass
class OrderService:
    db: Database
    inventory: InventoryClient
    coupons: CouponService
    clock: Clock

    async def get(self, uow: UnitOfWork, *, order_id: str, caller: Principal) -> OrderRead:
        return order_read(await self._visible(uow, order_id, caller))

    async def page(
        self,
        uow: UnitOfWork,
        *,
        caller: Principal,
        page: int,
        size: int,
        user_id: str | None = None,
        status: OrderStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Page[OrderRead]:
        """The caller's own orders, newest first; an admin's view of everyone's, filtered."""
        rows, total = await repository.orders(
            uow.session,
            offset=(page - 1) * size,
            limit=size,
            user_id=user_id if caller.is_admin else caller.subject,
            status=status.value if status else None,
            since=since,
            until=until,
        )
        return Page(items=[order_read(o) for o in rows], page=page, size=size, total=total)

    async def cancel(self, *, order_id: str, caller: Principal, reason: str | None) -> OrderRead:
        """A buyer's cancel (or an admin's). Before payment: the held units and the coupon go
        back. (Cancelling a confirmed order, which refunds it, comes with payments.)"""
        async with self.db.uow() as uow:
            order = await self._visible(uow, order_id, caller, for_update=True)
            current = OrderStatus(order.status)
            if current is not OrderStatus.CREATED:
                raise IllegalStatusMove(f"An order {current.value} cannot be cancelled here")
            now = self.clock.now()
            order.status = move(current, OrderStatus.CANCELLED).value
            order.payment_status = "NOT_CHARGED" if order.payment_method == "COD" else "CANCELLED"
            order.failure_reason, order.saga_step, order.updated_at = reason or "Cancelled by the buyer", "RELEASE", now
            await self.coupons.release(uow, order_id=order_id)
            await uow.publish(events.ORDER_CANCELLED, events.order_payload(order), at=now)
            await uow.commit()
        await self.inventory.release(order_id)
        async with self.db.uow() as uow:
            order = await self._visible(uow, order_id, caller, for_update=True)
            order.saga_step = "DONE"
            await uow.commit()
            return order_read(order)

    async def set_status(
        self, uow: UnitOfWork, *, order_id: str, status: OrderStatus, tracking_number: str | None
    ) -> OrderRead:
        """The admin's moves: PACKED, SHIPPED (a tracking number is required), DELIVERED."""
        order = await repository.order(uow.session, order_id, for_update=True)
        if order is None:
            raise OrderNotFound()
        if status is OrderStatus.SHIPPED and not (tracking_number or order.tracking_number):
            raise BadRequest(
                "Validation failed",
                code="VALIDATION_FAILED",
                details=[ErrorDetail(field="body.trackingNumber", message="required to ship an order")],
            )
        try:
            order.status = move(OrderStatus(order.status), status).value
        except IllegalMove as exc:
            raise IllegalStatusMove(str(exc)) from exc
        now = self.clock.now()
        if tracking_number:
            order.tracking_number = tracking_number
        order.updated_at = now
        await uow.publish(ADMIN_MOVES[status], events.order_payload(order), at=now)
        await uow.session.flush()
        return order_read(order)

    @staticmethod
    async def _visible(uow: UnitOfWork, order_id: str, caller: Principal, *, for_update: bool = False) -> Order:
        """The order if the caller may see it: their own, or any for an admin; someone else's
        looks absent (404)."""
        order = await repository.order(uow.session, order_id, for_update=for_update)
        if order is None or not caller.can_act_for(order.user_id):
            raise OrderNotFound()
        return order
