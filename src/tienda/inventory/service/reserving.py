"""Reserving: all or nothing, idempotent by order, by the database or the Redis strategy."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import uuid
import weakref
from datetime import datetime, timedelta
from functools import cached_property, partial

from sqlalchemy.exc import IntegrityError

from tienda.inventory import events, repository
from tienda.inventory.counters import Taken
from tienda.inventory.errors import (
    ConcurrentChange,
    InsufficientStock,
)
from tienda.inventory.models import Reservation
from tienda.inventory.repository import Counts
from tienda.inventory.schemas import ItemIn, ReservationRead
from tienda.inventory.service.base import Key, ServiceBase, flush_rows, quantities_of
from tienda.platform.combining import Combiner
from tienda.platform.db import Database, UnitOfWork
from tienda.platform.errors import ErrorDetail

_Together = tuple[Database, str, str, bool]
"""Reservations that can share a statement: database, product, variant, whether they bump
the row's counter epoch (made without the Redis counter)."""


class _Alone(enum.Enum):
    ALONE = "alone"


_ALONE = _Alone.ALONE
_Outcome = Counts | _Alone | None
"""Of one order's reservation in a shared statement (`Reserving._reserve_orders`)."""


class Reserving(ServiceBase):
    async def reserve(
        self, uow: UnitOfWork, *, order_id: str, items: list[ItemIn], ttl: timedelta | None = None
    ) -> ReservationRead:
        """Every item or none. Asking again for the same order returns what it holds."""
        wanted = quantities_of(items)
        hot = {key: q for key, q in wanted.items() if self.flash is not None and self.flash.covers(key)}
        one_statement = len(wanted) == 1 and uow.db.multi_table_statements
        # The one statement leaves out an order that holds its units already; otherwise they
        # are read first, apart from the transaction when Redis may refuse the order (then none
        # begins).
        if one_statement:
            existing = []
        elif hot:
            existing = await self._held(uow, order_id)
        else:
            existing = await repository.reservations(uow.session, order_id)
        if existing:
            return self._reservation_read(order_id, existing)
        taken = None
        if self.flash is not None and hot:
            # Taken in a task of its own, which a cancelled request (its client went away) does
            # not stop: `abandoned` then waits for it and gives back what it took.
            taking = asyncio.ensure_future(self.flash.take(uow.db, order_id, hot, wanted))
            self._taken[uow] = taking
            try:
                taken = await asyncio.shield(taking)
            except InsufficientStock:
                if one_statement and (existing := await self._held(uow, order_id)):
                    return self._reservation_read(order_id, existing)  # asked again once sold out
                raise
        now = self.clock.now()
        expires = now + (ttl or self.reservation_ttl)
        if one_statement:
            return await self._reserve_one(uow, order_id, wanted, taken, expires)
        # The stock rows are held first, in key order (no lock cycles); the reservation and
        # audit rows are written after, under those locks. A reservation refused for want of
        # stock then writes nothing, and the reservations of one item insert their rows one
        # at a time: on MariaDB, inserting them concurrently, beside refused ones' rows being
        # rolled back, deadlocked now and then on the gaps of the reservations' unique index
        # (about 1-3 times a run of the inventory suite under `-n 4`; none in 4 runs this way).
        short: dict[Key, tuple[ErrorDetail, int]] = {}
        held: dict[Key, Counts] = {}
        for (product_id, variant_id), quantity in wanted.items():
            bump = taken is None or (product_id, variant_id) not in taken.quantities
            counts = await repository.hold(uow.session, product_id, variant_id, quantity, now, bump=bump)
            if counts is None:
                short[(product_id, variant_id)] = await self._shortage(uow, product_id, variant_id, quantity)
            else:
                held[(product_id, variant_id)] = counts
        if short:
            if self.flash is not None and taken is not None:
                await self.flash.refused(taken, {k: epoch for k, (_, epoch) in short.items() if k in taken.quantities})
            raise InsufficientStock(details=[detail for detail, _ in short.values()])  # the caller rolls back
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
        await flush_rows(uow)  # a concurrent reservation of the same order fails here
        for (product_id, variant_id), counts in held.items():
            await self._publish(uow, product_id, variant_id, counts, change=-wanted[(product_id, variant_id)])
        if self.flash is not None and taken is not None:
            epochs = {key: held[key].epoch for key in taken.quantities}
            uow.after_commit(partial(self.flash.settle, uow.db, taken, epochs))
        return self._reservation_read(order_id, rows)

    async def _reserve_one(
        self,
        uow: UnitOfWork,
        order_id: str,
        wanted: dict[Key, int],
        taken: Taken | None,
        expires: datetime,
    ) -> ReservationRead:
        """One item, on PostgreSQL: one statement that commits by itself, together with the
        reservations of the same item that other requests of this process make at the same
        time (`repository.reserve_orders`, `_together`)."""
        [((product_id, variant_id), quantity)] = wanted.items()
        bump = taken is None or (product_id, variant_id) not in taken.quantities
        key = (uow.db, product_id, variant_id, bump)
        mine = repository.Wanted(order_id, quantity, expires)
        try:
            # Written in a task of their own, as the Redis units are taken: a request cancelled
            # meanwhile leaves `abandoned` to learn whether its reservation was written.
            writing = self._written[uow] = self._together.enqueue(key, mine)
            counts = await asyncio.shield(writing)
            if counts is _ALONE:
                writing = self._written[uow] = asyncio.ensure_future(self._reserve_alone(key, mine))
                counts = await asyncio.shield(writing)
        except IntegrityError as exc:
            raise ConcurrentChange() from exc  # the same order at the same time: the route reads what won
        if counts is None or counts is _ALONE:
            async with uow.db.reader() as reader:
                existing = await repository.reservations(reader.session, order_id)
                if existing:
                    await self.abandoned(uow)
                    return self._reservation_read(order_id, existing)
                detail, epoch = await self._shortage(reader, product_id, variant_id, quantity)
            if self.flash is not None and taken is not None:
                await self.flash.refused(taken, {(product_id, variant_id): epoch})
            raise InsufficientStock(details=[detail])
        if self.flash is not None and taken is not None:
            uow.after_commit(partial(self.flash.settle, uow.db, taken, {(product_id, variant_id): counts.epoch}))
        row = Reservation(
            order_id=order_id,
            product_id=product_id,
            variant_id=variant_id,
            quantity=quantity,
            status="RESERVED",
            expires_at=expires,
        )
        return self._reservation_read(order_id, [row])

    @staticmethod
    async def _held(uow: UnitOfWork, order_id: str) -> list[Reservation]:
        """The order's reservations as committed, read apart from `uow`'s transaction."""
        async with uow.db.reader() as reader:
            return await repository.reservations(reader.session, order_id)

    @cached_property
    def _together(self) -> Combiner[_Together, repository.Wanted, _Outcome]:
        """Reservations of one item that wait for the row's lock go in one statement: one
        lock, one commit and one published change for a batch instead of one each, which is
        what bounds the reservations of a hot item (a flash sale)."""
        return Combiner(self._reserve_orders, max_batch=self.reservations_per_statement)

    @cached_property
    def _written(self) -> weakref.WeakKeyDictionary[UnitOfWork, asyncio.Future[_Outcome]]:
        """The reservation each unit of work has in writing (`_reserve_one`)."""
        return weakref.WeakKeyDictionary()

    async def _reserve_alone(self, key: _Together, wanted: repository.Wanted) -> _Outcome:
        [outcome] = await self._reserve_orders(key, [wanted])
        return outcome

    async def _reserve_orders(self, key: _Together, wanted: list[repository.Wanted]) -> list[_Outcome]:
        """Per order: the row as it now is (reserved), None (it held a reservation already, or
        the one order of the batch did not fit), or _ALONE: the batch did not fit or collided
        with a concurrent reservation of one of its orders, and each of its orders must be
        tried by itself (which decides exactly who gets the last units)."""
        db, product_id, variant_id, bump = key
        try:
            held = await repository.reserve_orders(
                db,  # in autocommit
                product_id=product_id,
                variant_id=variant_id,
                wanted=wanted,
                now=self.clock.now(),
                bump=bump,
                events=((str(uuid.uuid4()), events.INVENTORY_UPDATED), (str(uuid.uuid4()), events.LOW_STOCK)),
            )
        except IntegrityError:
            if len(wanted) == 1:
                raise
            return [_ALONE] * len(wanted)
        if held.counts is not None:
            db.published()  # by the statement, committed already
            return [held.counts if w.order_id in held.fresh else None for w in wanted]
        if len(wanted) == 1:
            return [None]
        return [_ALONE if w.order_id in held.fresh else None for w in wanted]

    async def abandoned(self, uow: UnitOfWork) -> None:
        """The unit of work did not commit: units it took in Redis go back, unless the
        reservation written in a statement of its own (`_reserve_one`) holds them in the
        database, the request having been cancelled while it ran. An entry calls it shielded
        from cancellation (`asyncio.shield`), so that it runs to the end."""
        held = None
        writing = self._written.pop(uow, None)
        if writing is not None:
            with contextlib.suppress(Exception):  # nothing was written
                held = await writing
        taking = self._taken.pop(uow, None)
        if taking is None or self.flash is None:
            return
        try:
            taken = await taking
        except Exception:  # refused, or Redis failed: nothing was taken
            return
        if taken is None:
            return
        if isinstance(held, Counts):  # reserved and committed: the units stay taken
            await self.flash.settle(uow.db, taken, dict.fromkeys(taken.quantities, held.epoch))
        else:
            await self.flash.give_back(uow.db, taken)
