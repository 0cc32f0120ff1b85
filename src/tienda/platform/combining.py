"""Calls that arrive while one like them is running go together in the next one.

A `Combiner` runs `run(key, items)` for one key at a time. The first call of a key starts a
batch at once (in the event loop's next turn, with whatever arrived in the same turn); calls
of the same key that arrive while it runs wait and go together in the following batch, up to
`max_batch` each. Nothing waits for a batch to fill: an idle key costs one call's latency, a
busy one gets batches as large as the work behind it (as PostgreSQL's group commit does).

The batch runs in a task of its own, so a caller that is cancelled (its client went away)
stops neither the batch nor the others in it; a caller cancelled before its batch starts is
left out of it. Libraries such as `async-batcher` batch by size and time from one queue; this
needs one batch at a time per key, started without a delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 - item
R = TypeVar("R")


class Combiner(Generic[K, I, R]):
    def __init__(self, run: Callable[[K, list[I]], Awaitable[Sequence[R]]], *, max_batch: int = 64) -> None:
        """`run(key, items)` returns one result per item, in order; what it raises, every
        caller of that batch raises."""
        self._run = run
        self._max_batch = max_batch
        self._waiting: dict[K, list[tuple[I, asyncio.Future[R]]]] = {}
        self._running: dict[K, asyncio.Task[None]] = {}

    async def submit(self, key: K, item: I) -> R:
        return await self.enqueue(key, item)

    def enqueue(self, key: K, item: I) -> asyncio.Future[R]:
        """The future of `item`'s result. Cancelling it before its batch starts leaves the item
        out; shielded (`asyncio.shield`), it gets the result whatever happens to its caller."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((item, future))
        if key not in self._running:
            self._running[key] = asyncio.ensure_future(self._drain(key))
        return future

    async def _drain(self, key: K) -> None:
        try:
            while waiting := self._waiting.get(key):
                batch = [(item, future) for item, future in waiting[: self._max_batch] if not future.done()]
                del waiting[: self._max_batch]
                if not waiting:
                    del self._waiting[key]
                if batch:
                    await self._one(key, batch)
        except BaseException:  # cancelled (the loop is closing): nobody waiting gets an answer
            for _, future in self._waiting.pop(key, []):
                future.cancel()
            raise
        finally:
            del self._running[key]

    async def _one(self, key: K, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run(key, [item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} got {len(results)} results")
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
