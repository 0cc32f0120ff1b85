"""Use cases of inventory: reserve (all or nothing, idempotent by order), release, commit,
adjust, and the release of expired reservations. Each takes a unit of work, flushes, and
leaves the commit to its caller; every change of a row publishes `inventory.updated` (and
`inventory.low_stock` when available falls to the threshold) in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from tienda.inventory import events, repository
from tienda.inventory.errors import (
    BelowReserved,
    ConcurrentChange,
    InsufficientStock,
    ReservationClosed,
    ReservationNotFound,
    StockItemNotFound,
)
from tienda.inventory.models import NO_VARIANT, Movement, Reservation, StockItem
from tienda.inventory.schemas import ItemIn, ProductStock, ReservationRead, ReservedItem, VariantStock
from tienda.platform.clock import Clock
from tienda.platform.db import UnitOfWork
from tienda.platform.errors import BadRequest, ErrorDetail

Key = tuple[str, str]


def _key(item: ItemIn) -> Key:
    return item.product_id, item.variant_id or NO_VARIANT


async def _flush(uow: UnitOfWork) -> None:
    try:
        await uow.session.flush()
    except IntegrityError as exc:
        raise ConcurrentChange() from exc


def _wanted(items: list[ItemIn]) -> dict[Key, int]:
    """Quantities per (product, variant), the same item twice added up, in lock order."""
    wanted: dict[Key, int] = defaultdict(int)
    for item in items:
        wanted[_key(item)] += item.quantity
    return dict(sorted(wanted.items()))


@dataclass
class InventoryService:
    clock: Clock
    reservation_ttl: timedelta = timedelta(minutes=15)

    # -- reading --------------------------------------------------------------------------

    async def stock(self, uow: UnitOfWork, *, product_id: str) -> ProductStock:
        rows = await repository.items_of(uow.session, product_id)
        if not rows:
            raise StockItemNotFound()
        variants = [
            VariantStock(
                variant_id=r.variant_id or None,
                stock_count=r.stock_count,
                reserved=r.reserved_count,
                available=r.stock_count - r.reserved_count,
                threshold=r.threshold,
                updated_at=r.updated_at,
            )
            for r in rows
        ]
        return ProductStock(
            product_id=product_id,
            stock_count=sum(v.stock_count for v in variants),
            reserved=sum(v.reserved for v in variants),
            available=sum(v.available for v in variants),
            variants=variants,
        )

    async def reservation(self, uow: UnitOfWork, *, order_id: str) -> ReservationRead:
        rows = await repository.reservations(uow.session, order_id)
        if not rows:
            raise ReservationNotFound()
        return self._reservation_read(order_id, rows)

    # -- reservations ---------------------------------------------------------------------

    async def reserve(
        self, uow: UnitOfWork, *, order_id: str, items: list[ItemIn], ttl: timedelta | None = None
    ) -> ReservationRead:
        """Every item or none. Asking again for the same order returns what it holds."""
        existing = await repository.reservations(uow.session, order_id)
        if existing:
            return self._reservation_read(order_id, existing)
        now = self.clock.now()
        wanted = _wanted(items)
        expires = now + (ttl or self.reservation_ttl)
        rows = [
            Reservation(
                order_id=order_id,
                product_id=product_id,
                variant_id=variant_id,
                quantity=quantity,
                status="RESERVED",
                expires_at=expires,
                created_at=now,
                updated_at=now,
            )
            for (product_id, variant_id), quantity in wanted.items()
        ]
        uow.session.add_all(rows)
        for row in rows:
            self._audit(uow, row.product_id, row.variant_id, "RESERVE", 0, row.quantity, order_id=order_id)
        # Rows are written before the stock is touched: the stock rows' locks, taken by the
        # guarded UPDATEs below, are then held only until the commit that follows.
        await _flush(uow)  # a concurrent reservation of the same order fails here
        short: list[ErrorDetail] = []
        held: dict[Key, tuple[int, int, int]] = {}
        for (product_id, variant_id), quantity in wanted.items():  # in key order: no lock cycles
            counts = await repository.hold(uow.session, product_id, variant_id, quantity, now)
            if counts is None:
                short.append(await self._shortage(uow, product_id, variant_id, quantity))
            else:
                held[(product_id, variant_id)] = counts
        if short:
            raise InsufficientStock(details=short)  # the caller rolls back everything above
        for (product_id, variant_id), counts in held.items():
            await self._publish(uow, product_id, variant_id, counts, change=-wanted[(product_id, variant_id)])
        return self._reservation_read(order_id, rows)

    async def release(self, uow: UnitOfWork, *, order_id: str, items: list[ItemIn] | None) -> ReservationRead:
        """Held units go back to available: all of the order's, or the units named."""
        rows = await repository.reservations(uow.session, order_id, for_update=True)
        if not rows:
            raise ReservationNotFound()
        held = {(r.product_id, r.variant_id): r for r in rows if r.status == "RESERVED"}
        if items is None:
            releasing = {key: row.quantity for key, row in held.items()}
        else:
            releasing = _wanted(items)
            wrong = [
                ErrorDetail(
                    field="body.items",
                    message=f"{p} {v or ''}: the order holds {held[(p, v)].quantity if (p, v) in held else 0}",
                )
                for (p, v), q in releasing.items()
                if (p, v) not in held or held[(p, v)].quantity < q
            ]
            if wrong:
                raise BadRequest("The order does not hold these units", code="VALIDATION_FAILED", details=wrong)
        now = self.clock.now()
        for key, quantity in releasing.items():
            row = held[key]
            await self._unhold(uow, row, quantity, "RELEASE", now)
            if quantity == row.quantity:
                row.status = "RELEASED"  # the quantity stays: what the order held
            else:
                row.quantity -= quantity
            row.updated_at = now
        await uow.session.flush()
        return self._reservation_read(order_id, rows)

    async def commit(self, uow: UnitOfWork, *, order_id: str) -> ReservationRead:
        """Held units are sold: they leave the stock and the reservation. Idempotent."""
        rows = await repository.reservations(uow.session, order_id, for_update=True)
        if not rows:
            raise ReservationNotFound()
        held = [r for r in rows if r.status == "RESERVED"]
        if not held and not any(r.status == "COMMITTED" for r in rows):
            raise ReservationClosed()  # everything was released or expired: nothing to sell
        now = self.clock.now()
        for row in held:
            if not await repository.consume(uow.session, row.product_id, row.variant_id, row.quantity, now):
                raise RuntimeError(f"stock of {row.product_id}/{row.variant_id} disagrees with its reservations")
            row.status, row.updated_at = "COMMITTED", now
            await self._moved(
                uow, row.product_id, row.variant_id, "COMMIT", -row.quantity, -row.quantity, order_id=order_id
            )
        await uow.session.flush()
        return self._reservation_read(order_id, rows)

    async def release_expired(self, uow: UnitOfWork, *, limit: int = 500) -> int:
        """Reservations past their expiry give their units back (the worker runs this)."""
        now = self.clock.now()
        rows = await repository.expired(uow.session, now, limit)
        for row in rows:
            await self._unhold(uow, row, row.quantity, "EXPIRE", now)
            row.status, row.updated_at = "EXPIRED", now
        await uow.session.flush()
        return len(rows)

    # -- stock ----------------------------------------------------------------------------

    async def adjust(
        self,
        uow: UnitOfWork,
        *,
        product_id: str,
        variant_id: str | None,
        delta: int,
        reason: str,
        threshold: int | None,
        actor: str | None,
    ) -> ProductStock:
        """A restock or a correction; stock never falls below what is reserved."""
        variant = variant_id or NO_VARIANT
        now = self.clock.now()
        row = await repository.item(uow.session, product_id, variant, for_update=True)
        if row is None:
            if delta < 0:
                raise BelowReserved()
            row = StockItem(
                product_id=product_id,
                variant_id=variant,
                stock_count=delta,
                reserved_count=0,
                threshold=threshold or 0,
                updated_at=now,
            )
            uow.session.add(row)
            await _flush(uow)  # a concurrent first adjust of the same item fails here
            before = 0
        else:
            before = row.stock_count - row.reserved_count
            if delta and not await repository.restock(uow.session, product_id, variant, delta, now):
                raise BelowReserved()
            if threshold is not None:
                row.threshold = threshold
                row.updated_at = now
            await uow.session.flush()
        await self._moved(uow, product_id, variant, "ADJUST", delta, 0, reason=reason, actor=actor, before=before)
        return await self.stock(uow, product_id=product_id)

    # -- internals ------------------------------------------------------------------------

    async def _unhold(self, uow: UnitOfWork, row: Reservation, quantity: int, kind: str, now: datetime) -> None:
        if not await repository.unhold(uow.session, row.product_id, row.variant_id, quantity, now):
            raise RuntimeError(f"stock of {row.product_id}/{row.variant_id} disagrees with its reservations")
        await self._moved(uow, row.product_id, row.variant_id, kind, 0, -quantity, order_id=row.order_id)

    async def _shortage(self, uow: UnitOfWork, product_id: str, variant_id: str, quantity: int) -> ErrorDetail:
        row = await repository.item(uow.session, product_id, variant_id)
        available = row.stock_count - row.reserved_count if row else 0
        name = f"{product_id}/{variant_id}" if variant_id else product_id
        return ErrorDetail(field=name, message=f"asked {quantity}, available {available}", type="insufficient_stock")

    async def _moved(
        self,
        uow: UnitOfWork,
        product_id: str,
        variant_id: str,
        kind: str,
        stock_delta: int,
        reserved_delta: int,
        *,
        order_id: str | None = None,
        reason: str | None = None,
        actor: str | None = None,
        before: int | None = None,
    ) -> None:
        """Audit the change and publish the row as it now is."""
        self._audit(
            uow,
            product_id,
            variant_id,
            kind,
            stock_delta,
            reserved_delta,
            order_id=order_id,
            reason=reason,
            actor=actor,
        )
        counts = await repository.counts(uow.session, product_id, variant_id)
        available = counts[0] - counts[1]
        change = available - before if before is not None else stock_delta - reserved_delta
        await self._publish(uow, product_id, variant_id, counts, change=change)

    def _audit(
        self,
        uow: UnitOfWork,
        product_id: str,
        variant_id: str,
        kind: str,
        stock_delta: int,
        reserved_delta: int,
        *,
        order_id: str | None = None,
        reason: str | None = None,
        actor: str | None = None,
    ) -> None:
        uow.session.add(
            Movement(
                product_id=product_id,
                variant_id=variant_id,
                kind=kind,
                stock_delta=stock_delta,
                reserved_delta=reserved_delta,
                reason=reason,
                order_id=order_id,
                actor=actor,
                created_at=self.clock.now(),
            )
        )

    async def _publish(
        self, uow: UnitOfWork, product_id: str, variant_id: str, counts: tuple[int, int, int], *, change: int
    ) -> None:
        """`inventory.updated` with the row as it now is, and `inventory.low_stock` when this
        change (of available, by `change`) brought it down to the threshold."""
        stock, reserved, threshold = counts
        available = stock - reserved
        payload = {
            "productId": product_id,
            "variantId": variant_id or None,
            "stockCount": stock,
            "reserved": reserved,
            "available": available,
            "threshold": threshold,
        }
        now = self.clock.now()
        await uow.publish(events.INVENTORY_UPDATED, payload, at=now)
        if available <= threshold < available - change:
            await uow.publish(events.LOW_STOCK, payload, at=now)

    @staticmethod
    def _reservation_read(order_id: str, rows: list[Reservation]) -> ReservationRead:
        rows = sorted(rows, key=lambda r: (r.product_id, r.variant_id))  # the same order on every database
        statuses = {r.status for r in rows}
        status = next(s for s in ("RESERVED", "COMMITTED", "EXPIRED", "RELEASED") if s in statuses)
        return ReservationRead(
            order_id=order_id,
            status=status,
            expires_at=max(r.expires_at for r in rows),
            items=[
                ReservedItem(
                    product_id=r.product_id,
                    variant_id=r.variant_id or None,
                    quantity=r.quantity,
                    status=r.status,
                )
                for r in rows
            ],
        )
