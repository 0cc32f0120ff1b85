"""Use cases of inventory: reserve (all or nothing, idempotent by order), release, commit,
adjust, and the release of expired reservations. Each takes a unit of work, flushes, and
leaves the commit to its caller; every change of a row publishes `inventory.updated` (and
`inventory.low_stock` when available falls to the threshold) in the same transaction.

Entries run a use case through `InventoryService.committed`, which commits it, runs it again
when it lost a race, and, with the Redis strategy (`flash.py`), gives back the units a run
that did not commit took in Redis (`abandoned`)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from tienda.inventory.errors import ConcurrentChange
from tienda.inventory.service.adjusting import Adjusting
from tienda.inventory.service.reading import Reading
from tienda.inventory.service.reserving import Reserving
from tienda.inventory.service.settling import Settling
from tienda.platform.db import Database, UnitOfWork, gave_way

__all__ = ["InventoryService"]

T = TypeVar("T")
RUNS = 8
"""How often a use case is run before a lost race is answered 409 `CONCURRENT_CHANGE`."""
BACKOFF_S = 0.005
"""Before run n+1, a wait of up to 2^(n-1) times this, at random (5, 10, 20 ... 320 ms; 0.6 s
in all at most): requests that deadlocked on a row (InnoDB, twenty orders of one item at once
on two loaded cores) do not meet again at once, and a storm of them thins out. With five runs
and waits growing by 5 ms, the expiry job lost all five to reservations of the same item once
in a CI run of the suites under `-n 4` (MariaDB); that deadlock's own cause is gone since
(`repository.reservations`, `repository.expired`), the budget stays for the ones InnoDB may
still choose."""


class InventoryService(Reserving, Settling, Adjusting, Reading):
    """Built once per process (`wiring.py`); its parts are one file per use case."""

    async def committed(self, db: Database, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run `work` in a unit of work of its own and commit it. It is run again, from the
        start, when a concurrent request created the same row first (the next run sees that
        row) or when the database rolled it back for another transaction's sake (a deadlock,
        which InnoDB's manual asks every application to be ready for). A run that does not
        commit gives back what it took in Redis, shielded from cancellation so that a request
        whose client went away still does."""
        for run in range(1, RUNS + 1):
            try:
                async with db.uow() as uow:
                    try:
                        result = await work(uow)
                        await uow.commit()
                        return result
                    finally:
                        if not uow.committed:
                            await asyncio.shield(self.abandoned(uow))
            except ConcurrentChange:
                if run == RUNS:
                    raise
            except DBAPIError as exc:
                if not gave_way(exc):
                    raise
                if run == RUNS:
                    raise ConcurrentChange() from exc
                await asyncio.sleep(random.uniform(0, BACKOFF_S * 2 ** (run - 1)))
        raise AssertionError("unreachable")
