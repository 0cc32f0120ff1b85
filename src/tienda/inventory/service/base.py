"""What every use case of inventory shares: the service's parts, and auditing and publishing a
change of a stock row."""

from __future__ import annotations

import asyncio
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.exc import IntegrityError

from tienda.inventory import events, repository
from tienda.inventory.counters import Taken
from tienda.inventory.errors import (
    ConcurrentChange,
)
from tienda.inventory.flash import FlashSale, short_line
from tienda.inventory.models import NO_VARIANT, Movement, Reservation
from tienda.inventory.repository import Counts
from tienda.inventory.schemas import ItemIn, ReservationRead, ReservedItem
from tienda.platform.clock import Clock
from tienda.platform.db import UnitOfWork
from tienda.platform.errors import ErrorDetail

Key = tuple[str, str]
Change = tuple[Key, int, int]
"""(item, change of its available units, the row's counter epoch read under its lock)."""


def _key(item: ItemIn) -> Key:
    return item.product_id, item.variant_id or NO_VARIANT


async def flush_rows(uow: UnitOfWork) -> None:
    try:
        await uow.session.flush()
    except IntegrityError as exc:
        raise ConcurrentChange() from exc


def quantities_of(items: list[ItemIn]) -> dict[Key, int]:
    """Quantities per (product, variant), the same item twice added up, in lock order."""
    wanted: dict[Key, int] = defaultdict(int)
    for item in items:
        wanted[_key(item)] += item.quantity
    return dict(sorted(wanted.items()))


@dataclass
class ServiceBase:
    clock: Clock
    reservation_ttl: timedelta = timedelta(minutes=15)
    reservations_per_statement: int = 100
    """On PostgreSQL: the most reservations of one item that go together in one statement."""
    flash: FlashSale | None = None
    """The Redis strategy, when Redis is configured (it covers some items, or all, or none)."""
    _taken: weakref.WeakKeyDictionary[UnitOfWork, asyncio.Future[Taken | None]] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    """Units each unit of work took in Redis, until it commits or is abandoned."""

    def _bypasses(self, key: Key) -> bool:
        """Whether a release or an adjust of this row leaves its Redis counter out of date: for
        items of the database strategy, and in a process without Redis (another deployment's
        counters may exist). A reservation bypasses the counters of what it did not take in
        Redis: items of the database strategy, and all when Redis failed or a duplicate of the
        order took them (`bump` in `reserve`). The row's epoch then moves on."""
        return self.flash is None or not self.flash.covers(key)

    def _after_commit(self, uow: UnitOfWork, changes: list[Change]) -> None:
        """Changes of available units reach the Redis counters once committed."""
        if self.flash is not None:
            covered = [c for c in changes if c[1] and self.flash.covers(c[0])]
            if covered:
                uow.after_commit(partial(self.flash.changed, uow.db, covered))

    async def _unhold(self, uow: UnitOfWork, row: Reservation, quantity: int, kind: str, now: datetime) -> Change:
        key = (row.product_id, row.variant_id)
        after = await repository.unhold(uow.session, *key, quantity, now, bump=self._bypasses(key))
        if after is None:
            raise RuntimeError(f"stock of {row.product_id}/{row.variant_id} disagrees with its reservations")
        counts = await self._moved(
            uow, row.product_id, row.variant_id, kind, 0, -quantity, order_id=row.order_id, after=after
        )
        return key, quantity, counts.epoch

    async def _shortage(
        self, uow: UnitOfWork, product_id: str, variant_id: str, quantity: int
    ) -> tuple[ErrorDetail, int]:
        """What to say of a short item, and its row's counter epoch (-1: no row)."""
        row = await repository.item(uow.session, product_id, variant_id)
        available = row.stock_count - row.reserved_count if row else 0
        return short_line((product_id, variant_id), quantity, available), row.cache_epoch if row else -1

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
        after: Counts | None = None,
    ) -> Counts:
        """Audit the change and publish the row as it now is (`after`, if its UPDATE returned
        it; else read); returns it."""
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
        counts = after or await repository.counts(uow.session, product_id, variant_id)
        change = counts.available - before if before is not None else stock_delta - reserved_delta
        await self._publish(uow, product_id, variant_id, counts, change=change)
        return counts

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

    async def _publish(self, uow: UnitOfWork, product_id: str, variant_id: str, counts: Counts, *, change: int) -> None:
        """`inventory.updated` with the row as it now is, and `inventory.low_stock` when this
        change (of available, by `change`) brought it down to the threshold."""
        stock, reserved, threshold, _ = counts
        available = stock - reserved
        payload = {
            "productId": product_id,
            "variantId": variant_id or None,
            "stockCount": stock,
            "reserved": reserved,
            "available": available,
            "availableChange": change,
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
