"""The Redis ("flash-sale") strategy of reservations, as the service uses it: take the units
from the Redis counters first (`counters.py` says how they stay exact), load a counter that is
missing, confirm a refusal against the database, and keep the counters in step after commits.

Which items use it: all of them with `TIENDA_INVENTORY_STRATEGY=redis`, else those listed in
`TIENDA_INVENTORY_REDIS_ITEMS`; always only when `TIENDA_REDIS_URL` is set. When Redis cannot
be reached, a request falls back to the database strategy (which marks the counter out of date).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence

from redis.exceptions import RedisError

from tienda.inventory import repository
from tienda.inventory.counters import Counters, Duplicate, Key, Missing, Refused, Taken
from tienda.inventory.errors import InsufficientStock
from tienda.platform.db import Database
from tienda.platform.errors import ErrorDetail
from tienda.platform.observability import get_logger

log = get_logger("tienda.inventory.flash")

ATTEMPTS = 3
"""Loads or confirmations of one request before it falls back to the database strategy."""


def short_line(key: Key, quantity: int, available: int) -> ErrorDetail:
    """The `details` entry of an item that cannot be reserved."""
    product_id, variant_id = key
    name = f"{product_id}/{variant_id}" if variant_id else product_id
    return ErrorDetail(field=name, message=f"asked {quantity}, available {available}", type="insufficient_stock")


class FlashSale:
    def __init__(self, counters: Counters, *, everything: bool, items: Sequence[str] = ()) -> None:
        self.counters = counters
        self.everything = everything
        self.items = frozenset(items)
        self._loading: weakref.WeakValueDictionary[Key, asyncio.Lock] = weakref.WeakValueDictionary()

    def covers(self, key: Key) -> bool:
        product_id, variant_id = key
        return self.everything or product_id in self.items or f"{product_id}/{variant_id}" in self.items

    async def take(self, db: Database, order_id: str, hot: dict[Key, int], wanted: dict[Key, int]) -> Taken | None:
        """Take the `hot` units from Redis; InsufficientStock (naming every short item of
        `wanted`) when the counters, confirmed by the database, hold too few; None when the
        database strategy must decide: Redis is unreachable, the counters keep changing under
        us, or another request of the same order took the units (the database's unique index
        then makes this one wait for that one's outcome)."""
        try:
            for _ in range(ATTEMPTS):
                outcome = await self.counters.take(order_id, hot)
                if isinstance(outcome, Taken):
                    return outcome
                if isinstance(outcome, Duplicate):
                    return None
                if isinstance(outcome, Missing):
                    absent = [key for key in outcome.keys if not await self._load_once(db, key)]
                    if absent:
                        raise await self._shortage(db, wanted, {})
                    continue
                if not await self._stale(db, outcome):
                    raise await self._shortage(db, wanted, outcome.available)
        except RedisError as exc:
            log.warning("inventory.redis_unreachable", error=repr(exc))
        return None

    async def _load_once(self, db: Database, key: Key) -> bool:
        """Load a missing counter, once for all the requests of this process that found it
        missing at the same time (each load moves the epoch on, and costs the row's lock)."""
        lock = self._loading.setdefault(key, asyncio.Lock())
        async with lock:
            if await self.counters.read(key) is not None:
                return True
            return await self._load(db, key)

    async def _load(self, db: Database, key: Key) -> bool:
        """Load a counter from its row (False: no such row). The epoch moves on and commits
        first: changes after it are parked for this load, changes before it are in the row."""
        async with db.uow() as uow:
            counts = await repository.next_epoch(uow.session, *key)
            if counts is None:
                return False
            await uow.commit()
        await self.counters.load(key, counts.available, counts.epoch)
        return True

    async def _stale(self, db: Database, refused: Refused) -> bool:
        """Whether a refusal came from counters the database has moved past (then dropped)."""
        async with db.reader() as uow:
            stored = await repository.counts_of(uow.session, list(refused.available))
        stale = {k: e for k, e in refused.epochs.items() if k in stored and stored[k].epoch != e}
        await self.counters.drop(stale)
        return bool(stale)

    async def _shortage(self, db: Database, wanted: dict[Key, int], counted: dict[Key, int]) -> InsufficientStock:
        """Every short item of the order: by the counters where they refused, else by the rows."""
        async with db.reader() as uow:
            stored = await repository.counts_of(uow.session, list(wanted))
        details = []
        for key, quantity in wanted.items():
            available = stored[key].available if key in stored else 0
            available = min(available, counted.get(key, available))
            if available < quantity:
                details.append(short_line(key, quantity, max(available, 0)))
        return InsufficientStock(details=details)

    # -- after the database transaction ------------------------------------------------------

    async def settle(self, db: Database, taken: Taken, epochs: dict[Key, int]) -> None:
        """Committed: where the row's epoch (read under its lock) is not the counter's the
        units came from, a load happened in between and its counter must lose them too."""
        await self.changed(
            db, [(k, -q, epochs[k]) for k, q in taken.quantities.items() if epochs[k] != taken.epochs[k]]
        )

    async def give_back(self, db: Database, taken: Taken) -> None:
        """Not committed: the units go back to the counters they were taken from, and the
        order may take them again."""
        await self.changed(db, [(k, q, taken.epochs[k]) for k, q in taken.quantities.items()])
        try:
            await self.counters.forget_order(taken.order_id)
        except RedisError as exc:  # it expires soon; meanwhile a retry uses the database strategy
            log.warning("inventory.redis_unreachable", error=repr(exc))

    async def refused(self, taken: Taken, epochs: dict[Key, int]) -> None:
        """The database refused what the counters let through (`epochs`: the rows' then). The
        counter may be wrong, or only behind for a moment (a change that lowered the stock and
        has not reached it yet, or holds of a load's older counter not settled yet): it is
        reloaded soon, unless a load came in between (the epochs differ) and did it already."""
        try:
            await self.counters.doubt({k: e for k, e in epochs.items() if taken.epochs[k] == e})
        except RedisError as exc:
            log.warning("inventory.redis_unreachable", error=repr(exc))

    async def changed(self, db: Database, changes: Sequence[tuple[Key, int, int]]) -> None:
        """Apply committed (item, delta, epoch) changes to the counters; if Redis cannot be
        reached, move the rows' epochs on instead, so that the counters are reloaded."""
        if not changes:
            return
        try:
            await self.counters.apply(changes)
        except RedisError as exc:
            log.warning("inventory.redis_unreachable", error=repr(exc))
            await self.outdate(db, sorted({key for key, _, _ in changes}))

    async def outdate(self, db: Database, keys: Sequence[Key]) -> None:
        try:
            async with db.uow() as uow:
                for key in keys:
                    await repository.next_epoch(uow.session, *key)
                await uow.commit()
        except Exception as exc:  # the request itself succeeded; the counters expire in the end anyway
            log.error("inventory.counter_not_outdated", keys=[list(k) for k in keys], error=repr(exc))
