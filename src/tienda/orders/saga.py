"""The checkout saga of SEED.md 7.4 after the order is stored, step by step.

    PLACED ──reserve, take out of cart──┬──COD─────────▶ SELL ──commit stock──▶ DONE   (CONFIRMED)
                                        │
                                        └──open payment──▶ PAYMENT_PENDING ──payment.captured──▶ CAPTURED
                                                             │                                      │
                                          payment.failed /   │                  commit stock ──▶ DONE (CONFIRMED)
                                          expired / cancel   ▼                  stock gone ───▶ REFUND (FAILED)
                                                          RELEASE ──release stock, close payment──▶ DONE

    CONFIRMED/PACKED cancelled, or a capture for an order already FAILED/CANCELLED:
                                                          REFUND ──units back, payment refunded──▶ DONE

Each step is its own transaction in its own module, and idempotent by the order id; the
order's `saga_step` says how far it got, so the worker (`resume`) carries on an order whose
process stopped midway, and gives up on payments that did not come before the order expired.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError

from tienda.carts.client import CartLine, CartsClient
from tienda.inventory.client import InventoryClient, StockGone, StockLine, StockShort
from tienda.orders import events, repository
from tienda.orders.coupons import CouponService
from tienda.orders.domain import PAID, OrderStatus, move
from tienda.orders.errors import OutOfStock, PaymentGatewayDown
from tienda.orders.models import Order
from tienda.payments.client import NothingToRefund, PaymentDeclined, PaymentsClient, RefundFailed
from tienda.payments.events import PAYMENT_CAPTURED, PAYMENT_FAILED, PAYMENT_REFUNDED
from tienda.platform.clock import Clock
from tienda.platform.db import Database, UnitOfWork
from tienda.platform.errors import ErrorDetail
from tienda.platform.events import Consumer, Event, outbox_row, processed_params
from tienda.platform.observability import get_logger

log = get_logger("tienda.orders.saga")

RESUMABLE = ("PLACED", "RESERVED", "CAPTURED", "SELL", "RELEASE", "REFUND")
"""Steps with work left that needs no one but us (PAYMENT_PENDING waits for the gateway)."""

CAPTURED_CONSUMER = "orders.payment_captured"

WAITING_FOR_PAYMENT = ("PLACED", "RESERVED", "PAYMENT_PENDING")
"""Steps at which the gateway's word about the payment is taken: the payment is opened while
the order is still PLACED (RESERVED, by an earlier version), and it can be paid before the
order is moved on to PAYMENT_PENDING."""


@dataclass
class Saga:
    db: Database
    carts: CartsClient
    inventory: InventoryClient
    payments: PaymentsClient
    coupons: CouponService
    clock: Clock
    reservation_ttl: timedelta

    async def advance(self, order_id: str, order: Order | None = None) -> Order:
        """Carry the order on from where its saga stands, to its end or to a wait (payment).
        `order`: as just stored (else read). A step that moved the order on keeps it in memory;
        one that found it moved by someone else has it read again."""
        gateway_down = False
        while True:
            if order is None:
                async with self.db.reader() as uow:
                    order = await repository.order(uow.session, order_id)
                assert order is not None
            step = order.saga_step
            moved: Order | None = None
            if step in ("PLACED", "RESERVED"):
                # The reservation is not a step of its own: asked again for the order (after a
                # restart), inventory answers with the same hold. RESERVED: stored so by an
                # earlier version, which wrote the hold down before going on.
                expires_at = await self._reserve(order) if step == "PLACED" else None
                await self._take_out_of_cart(order)
                if order.payment_method == "COD":
                    moved = await self._confirm(order, at=step, payment_status="COD_PENDING", then="SELL")
                else:
                    moved, gateway_down = await self._open_payment(order, at=step, expires_at=expires_at)
            elif step == "CAPTURED":
                try:
                    await self.inventory.commit(order_id)
                except StockGone:  # paid after its units went back: nothing to sell, the money goes back
                    await self._fail(order_id, "RESERVATION_EXPIRED", step="REFUND", payment_status="CAPTURED")
                    order = None
                    continue
                moved = await self._confirm(order, at="CAPTURED", payment_status="CAPTURED", then="DONE")
            elif step == "SELL":
                await self.inventory.commit(order_id)
                moved = await self._move(order, "SELL", saga_step="DONE")
            elif step == "RELEASE":
                await self.inventory.release(order_id)
                if order.payment_method != "COD":
                    await self.payments.expire(order_id=order_id)
                moved = await self._move(order, "RELEASE", saga_step="DONE")
            elif step == "REFUND":
                if not await self._refund_all(order):
                    return order
            else:
                if gateway_down:
                    raise PaymentGatewayDown()
                return order
            order = moved

    async def resume(self, *, stalled_after: timedelta = timedelta(seconds=30), limit: int = 100) -> int:
        """The worker's job: carry on orders whose checkout stopped midway (a crash, a restart)
        and has not moved for `stalled_after`, and give up on payments past the order's
        expiry. How many orders it moved on."""
        now = self.clock.now()
        async with self.db.reader() as uow:
            stalled = await repository.unfinished(uow.session, steps=RESUMABLE, before=now - stalled_after, limit=limit)
            unpaid = await repository.unpaid_expired(uow.session, now=now, limit=limit)
        for order_id in stalled:
            with contextlib.suppress(OutOfStock, PaymentGatewayDown):  # the order FAILED, as it should
                await self.advance(order_id)
        for order_id in unpaid:
            if await self.payments.expire(order_id=order_id) == "FAILED":
                await self._fail(order_id, "PAYMENT_EXPIRED", step="RELEASE", payment_status="FAILED")
                await self.advance(order_id)
        return len(stalled) + len(unpaid)

    # -- steps ------------------------------------------------------------------------------

    async def _reserve(self, order: Order) -> datetime:
        """The order's units held (the same hold when asked again); when the hold ends. Short
        of stock, the order FAILED and `OutOfStock`."""
        lines = [StockLine(i.product_id, i.variant_id, i.quantity) for i in order.items]
        try:
            return await self.inventory.reserve(order.order_id, lines, ttl=self.reservation_ttl)
        except StockShort as short:
            await self._fail(order.order_id, "INSUFFICIENT_STOCK", step="DONE")
            raise OutOfStock(details=[ErrorDetail(field=s.field, message=s.message) for s in short.lines]) from short

    async def _move(self, order: Order, at: str, **values: Any) -> Order | None:
        """The order's row from saga step `at` on to `values`, in one guarded statement (no
        lock taken and held across round trips, no transaction around it); the order as it
        now is, or None if it was no longer at `at` (someone else moved it: read it again)."""
        values["updated_at"] = self.clock.now()
        if not await repository.move_step_now(self.db, order.order_id, at=at, values=values):
            return None
        for name, value in values.items():
            setattr(order, name, value)
        return order

    async def _take_out_of_cart(self, order: Order) -> None:
        await self.carts.remove_lines(
            order.user_id, [CartLine(i.product_id, i.variant_id, i.quantity) for i in order.items]
        )

    async def _open_payment(self, order: Order, *, at: str, expires_at: datetime | None) -> tuple[Order | None, bool]:
        """The order's payment at the gateway, the order moved on from saga step `at` to wait
        for it until `expires_at` (the hold's end; None: as stored), and whether the gateway
        could not open it (the order then FAILED and its units go back)."""
        try:
            payment = await self.payments.initiate(
                order_id=order.order_id,
                user_id=order.user_id,
                amount=order.total_amount,
                currency=order.currency,
                customer_email=None,
            )
        except PaymentDeclined:
            await self._fail(order.order_id, "PAYMENT_GATEWAY_ERROR", step="RELEASE", payment_status="FAILED")
            return None, True
        waiting = {"expires_at": expires_at} if expires_at is not None else {}
        moved = await self._move(
            order,
            at,
            payment_id=payment.payment_id,
            payment_url=payment.payment_url,
            saga_step="PAYMENT_PENDING",
            **waiting,
        )
        return moved, False

    async def _confirm(self, order: Order, *, at: str, payment_status: str, then: str) -> Order | None:
        """The order CONFIRMED, if it is still CREATED with its saga `at`: one guarded UPDATE
        and `order.confirmed` in one transaction; the order as it now is (None when someone
        else moved it first, so that the caller reads it again).

        The event is built from `order` as the caller holds it, not read again under a lock:
        while the order is CREATED at `at`, only this step may change it, and its lines never
        change, so what the caller holds is what a read would give."""
        now = self.clock.now()
        values = {
            "status": move(OrderStatus.CREATED, OrderStatus.CONFIRMED).value,
            "payment_status": payment_status,
            "payment_url": None,
            "saga_step": then,
            "updated_at": now,
        }
        created = OrderStatus.CREATED.value
        if self.db.multi_table_statements:
            # The event is made before the move is known: if someone moved the order first,
            # neither is written, and the caller reads the order again.
            for name, value in values.items():
                setattr(order, name, value)
            event = outbox_row(events.ORDER_CONFIRMED, events.order_payload(order), source=self.db.module, at=now)
            if not await repository.move_step_publishing(
                self.db, order.order_id, at=at, values=values, status=created, event=event
            ):
                return None
            self.db.published()
            return order
        async with self.db.uow() as uow:
            if not await repository.move_step(uow.session, order.order_id, at=at, values=values, status=created):
                return None
            for name, value in values.items():
                setattr(order, name, value)
            await uow.publish(events.ORDER_CONFIRMED, events.order_payload(order), at=now)
            await uow.commit()
        return order

    async def _refund_all(self, order: Order) -> bool:
        """Units sold come back and the payment is refunded in full; False if the gateway could
        not be reached (the worker tries again)."""
        await self.inventory.release(order.order_id)
        await self.inventory.give_back(order.order_id)
        refunded = Decimal("0.00")
        if order.payment_method != "COD":
            try:
                refunded = await self.payments.refund(
                    order_id=order.order_id,
                    amount=None,
                    request_key=f"{order.order_id}:all",
                    reason=order.failure_reason,
                )
            except NothingToRefund:
                refunded = Decimal("0.00")
            except RefundFailed:
                async with self.db.uow() as uow:
                    row = await self._locked(uow, order.order_id)
                    row.payment_status, row.updated_at = "REFUND_PENDING", self.clock.now()
                    await uow.commit()
                return False
        async with self.db.uow() as uow:
            row = await self._locked(uow, order.order_id)
            if row.saga_step == "REFUND":
                self.record_refunds(row, refunded)
                if refunded == 0:
                    row.payment_status = "NOT_CHARGED" if row.payment_method == "COD" else row.payment_status
                row.saga_step, row.updated_at = "DONE", self.clock.now()
                await uow.commit()
        return True

    async def _fail(self, order_id: str, reason: str, *, step: str, payment_status: str | None = None) -> None:
        async with self.db.uow() as uow:
            row = await self._locked(uow, order_id)
            if await self._failed(uow, row, reason, step=step, payment_status=payment_status):
                await uow.commit()

    async def _failed(
        self, uow: UnitOfWork, row: Order, reason: str, *, step: str, payment_status: str | None = None
    ) -> bool:
        """The order FAILED (if it still can): its coupon is given back; `step` says what is left to undo."""
        if row.status != OrderStatus.CREATED:
            return False
        now = self.clock.now()
        row.status = move(OrderStatus.CREATED, OrderStatus.FAILED).value
        row.payment_status = payment_status or ("NOT_CHARGED" if row.payment_method == "COD" else "FAILED")
        row.failure_reason, row.saga_step, row.payment_url, row.updated_at = reason, step, None, now
        await self.coupons.release(uow, order_id=row.order_id)
        await uow.publish(events.ORDER_FAILED, events.order_payload(row) | {"reason": reason}, at=now)
        return True

    @staticmethod
    async def _locked(uow: UnitOfWork, order_id: str) -> Order:
        row = await repository.order(uow.session, order_id, for_update=True)
        assert row is not None
        return row

    @staticmethod
    def record_refunds(row: Order, refunded_total: Decimal) -> bool:
        """The payment's refunded total, as payments reports it (reports may come twice or late:
        the total only grows). Whether it grew."""
        if refunded_total <= row.refunded_amount:
            return False
        row.refunded_amount = refunded_total
        row.payment_status = "REFUNDED" if refunded_total >= row.total_amount else "PARTIALLY_REFUNDED"
        return True

    # -- what payments tells us -----------------------------------------------------------

    def consumers(self) -> list[Consumer]:
        at_once = self.captured_at_once if self.db.multi_table_statements else None
        return [
            Consumer(CAPTURED_CONSUMER, "orders", (PAYMENT_CAPTURED,), self.on_captured, at_once=at_once),
            Consumer("orders.payment_failed", "orders", (PAYMENT_FAILED,), self.on_failed),
            Consumer("orders.payment_refunded", "orders", (PAYMENT_REFUNDED,), self.on_refunded),
        ]

    async def captured_at_once(self, event: Event) -> bool:
        """`on_captured` of an order waiting for its payment, in one statement with the event's
        processed row (PostgreSQL): no lock held across round trips, no transaction, no ORM
        read of the order. False for anything else (a COD order, one that gave up waiting, a
        duplicate): nothing was written, and `on_captured` decides in a unit of work."""
        processed = processed_params(CAPTURED_CONSUMER, event)
        try:
            order = await repository.capture(
                self.db,
                event.payload["orderId"],
                payment_id=event.payload["paymentId"],
                steps=WAITING_FOR_PAYMENT,
                now=self.clock.now(),
                processed=processed,
            )
        except IntegrityError:  # recorded already: the unit of work tells the duplicate
            return False
        if order is None:
            return False
        await self._carry_on(order.order_id, order)
        return True

    async def on_captured(self, event: Event, uow: UnitOfWork) -> None:
        row = await repository.order(uow.session, event.payload["orderId"], for_update=True)
        if row is None or row.payment_method == "COD":
            return
        if row.status == OrderStatus.CREATED and row.saga_step in WAITING_FOR_PAYMENT:
            row.saga_step = "CAPTURED"
        elif row.status in (OrderStatus.FAILED, OrderStatus.CANCELLED) and row.payment_status != "REFUNDED":
            row.saga_step = "REFUND"  # paid after the order gave up waiting: the money goes back
        else:
            return
        row.payment_id = event.payload["paymentId"]
        row.payment_status, row.payment_url, row.updated_at = "CAPTURED", None, self.clock.now()
        uow.after_commit(partial(self._carry_on, row.order_id, row))

    async def on_failed(self, event: Event, uow: UnitOfWork) -> None:
        row = await repository.order(uow.session, event.payload["orderId"], for_update=True)
        if row is None or row.status != OrderStatus.CREATED or row.saga_step not in WAITING_FOR_PAYMENT:
            return
        reason = "PAYMENT_EXPIRED" if event.payload.get("reason") == "EXPIRED" else "PAYMENT_DECLINED"
        if await self._failed(uow, row, reason, step="RELEASE", payment_status="FAILED"):
            uow.after_commit(partial(self._carry_on, row.order_id, row))

    async def on_refunded(self, event: Event, uow: UnitOfWork) -> None:
        """A refund done (ours or one made at the gateway): the order shows it; refunded in
        full, a paid order is REFUNDED."""
        row = await repository.order(uow.session, event.payload["orderId"], for_update=True)
        if row is not None:
            await self.refunded(uow, row, Decimal(event.payload["refundedAmount"]))

    async def refunded(self, uow: UnitOfWork, row: Order, refunded_total: Decimal) -> bool:
        """The order (locked in `uow`) takes the payment's refunded total; refunded in full, a
        paid order is REFUNDED. Whether anything changed."""
        if not self.record_refunds(row, refunded_total):
            return False
        now = self.clock.now()
        row.updated_at = now
        if row.refunded_amount >= row.total_amount and OrderStatus(row.status) in PAID:
            row.status = move(OrderStatus(row.status), OrderStatus.REFUNDED).value
            await uow.publish(events.ORDER_REFUNDED, events.order_payload(row), at=now)
        return True

    async def _carry_on(self, order_id: str, row: Order | None = None) -> None:
        """After a payment event committed: the saga goes on from `row` as that commit left it
        (locked until then, so no one moved it in between; no need to read it again)."""
        try:
            await self.advance(order_id, row)
        except Exception as exc:  # the worker's `resume` carries it on later
            log.warning("saga_stalled", order_id=order_id, error=repr(exc))
