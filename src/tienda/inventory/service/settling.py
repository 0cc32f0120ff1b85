"""Release, commit, and the release of expired reservations."""

from __future__ import annotations

import uuid

from tienda.inventory import events, repository
from tienda.inventory.errors import (
    ReservationClosed,
    ReservationNotFound,
)
from tienda.inventory.schemas import ItemIn, ReservationRead
from tienda.inventory.service.base import Change, ServiceBase, quantities_of
from tienda.platform.db import UnitOfWork
from tienda.platform.errors import BadRequest, ErrorDetail


class Settling(ServiceBase):
    async def release(self, uow: UnitOfWork, *, order_id: str, items: list[ItemIn] | None) -> ReservationRead:
        """Held units go back to available: all of the order's, or the units named."""
        rows = await repository.reservations(uow.session, order_id, for_update=True)
        if not rows:
            raise ReservationNotFound()
        held = {(r.product_id, r.variant_id): r for r in rows if r.status == "RESERVED"}
        if items is None:
            releasing = {key: row.quantity for key, row in held.items()}
        else:
            releasing = quantities_of(items)
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
        changes: list[Change] = []
        for key, quantity in releasing.items():
            row = held[key]
            changes.append(await self._unhold(uow, row, quantity, "RELEASE", now))
            if quantity == row.quantity:
                row.status = "RELEASED"  # the quantity stays: what the order held
            else:
                row.quantity -= quantity
            row.updated_at = now
        await uow.session.flush()
        self._after_commit(uow, changes)
        return self._reservation_read(order_id, rows)

    async def commit(self, uow: UnitOfWork, *, order_id: str) -> ReservationRead:
        """Held units are sold: they leave the stock and the reservation. Idempotent.

        On PostgreSQL an order holding one item is sold in one statement that commits by
        itself (`repository.sell_one`) instead of a transaction of seven round trips; any other
        order takes the path below, in `uow`."""
        if uow.db.multi_table_statements:
            event = (str(uuid.uuid4()), events.INVENTORY_UPDATED)
            sold = await repository.sell_one(uow.db, order_id=order_id, now=self.clock.now(), event=event)
            if sold is not None:
                uow.db.published()  # by the statement, committed already
                return self._reservation_read(order_id, [sold])
        rows = await repository.reservations(uow.session, order_id, for_update=True)
        if not rows:
            raise ReservationNotFound()
        held = [r for r in rows if r.status == "RESERVED"]
        if not held and not any(r.status == "COMMITTED" for r in rows):
            raise ReservationClosed()  # everything was released or expired: nothing to sell
        now = self.clock.now()
        for row in held:
            after = await repository.consume(uow.session, row.product_id, row.variant_id, row.quantity, now)
            if after is None:
                raise RuntimeError(f"stock of {row.product_id}/{row.variant_id} disagrees with its reservations")
            row.status, row.updated_at = "COMMITTED", now
            await self._moved(
                uow,
                row.product_id,
                row.variant_id,
                "COMMIT",
                -row.quantity,
                -row.quantity,
                order_id=order_id,
                after=after,
            )
        await uow.session.flush()
        return self._reservation_read(order_id, rows)

    async def give_back(self, uow: UnitOfWork, *, order_id: str) -> int:
        """Units the order bought come back to the stock (its sale was cancelled before it
        shipped). Idempotent: a row given back is RETURNED; returns how many units came back."""
        rows = await repository.reservations(uow.session, order_id, for_update=True)
        now = self.clock.now()
        changes: list[Change] = []
        returned = 0
        for row in rows:
            if row.status != "COMMITTED":
                continue
            key = (row.product_id, row.variant_id)
            counts = await repository.counts(uow.session, *key)
            before = counts.stock - counts.reserved
            if not await repository.restock(uow.session, *key, row.quantity, now, bump=self._bypasses(key)):
                raise RuntimeError(f"stock of {row.product_id}/{row.variant_id} could not take back {row.quantity}")
            row.status, row.updated_at = "RETURNED", now
            moved = await self._moved(
                uow, *key, "RETURN", row.quantity, 0, order_id=order_id, reason="order cancelled", before=before
            )
            changes.append((key, row.quantity, moved.epoch))
            returned += row.quantity
        await uow.session.flush()
        self._after_commit(uow, changes)
        return returned

    async def release_expired(self, uow: UnitOfWork, *, limit: int = 500) -> int:
        """Reservations past their expiry give their units back (the worker runs this)."""
        now = self.clock.now()
        rows = await repository.expired(uow.session, now, limit)
        changes = []
        for row in rows:
            changes.append(await self._unhold(uow, row, row.quantity, "EXPIRE", now))
            row.status, row.updated_at = "EXPIRED", now
        await uow.session.flush()
        self._after_commit(uow, changes)
        return len(rows)
