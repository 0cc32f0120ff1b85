"""The combiner: calls that arrive while a batch of their key runs go together in the next."""

from __future__ import annotations

import asyncio

import pytest

from tienda.platform.combining import Combiner


class Recorder:
    """A batch runner that records each batch and waits to be let go."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[int]]] = []
        self.go = asyncio.Event()
        self.started = asyncio.Event()

    async def run(self, key: str, items: list[int]) -> list[int]:
        self.batches.append((key, items))
        self.started.set()
        await self.go.wait()
        if any(i < 0 for i in items):
            raise ValueError(f"negative in {items}")
        return [i * 10 for i in items]


async def test_calls_arriving_while_a_batch_runs_go_together_in_the_next() -> None:
    recorder = Recorder()
    combiner: Combiner[str, int, int] = Combiner(recorder.run, max_batch=3)
    first = asyncio.ensure_future(combiner.submit("k", 1))
    await recorder.started.wait()
    later = [asyncio.ensure_future(combiner.submit("k", n)) for n in (2, 3, 4, 5)]
    await asyncio.sleep(0)
    assert recorder.batches == [("k", [1])]  # the first did not wait for company

    recorder.go.set()
    assert await asyncio.gather(first, *later) == [10, 20, 30, 40, 50]
    assert recorder.batches == [("k", [1]), ("k", [2, 3, 4]), ("k", [5])]  # at most max_batch each


async def test_keys_are_batched_apart_and_run_at_the_same_time() -> None:
    recorder = Recorder()
    combiner: Combiner[str, int, int] = Combiner(recorder.run)
    calls = [asyncio.ensure_future(combiner.submit(key, n)) for key, n in (("a", 1), ("b", 2), ("a", 3))]
    await asyncio.sleep(0.01)
    assert sorted(recorder.batches) == [("a", [1, 3]), ("b", [2])]  # one turn's calls share a batch

    recorder.go.set()
    assert await asyncio.gather(*calls) == [10, 20, 30]


async def test_what_a_batch_raises_reaches_its_callers_only() -> None:
    recorder = Recorder()
    combiner: Combiner[str, int, int] = Combiner(recorder.run)
    failing = [asyncio.ensure_future(combiner.submit("k", n)) for n in (1, -1)]
    await recorder.started.wait()
    after = asyncio.ensure_future(combiner.submit("k", 7))

    recorder.go.set()
    for call in failing:
        with pytest.raises(ValueError, match="negative"):
            await call
    assert await after == 70


async def test_a_caller_that_goes_away_stops_nobody_else() -> None:
    recorder = Recorder()
    combiner: Combiner[str, int, int] = Combiner(recorder.run)
    running = [asyncio.ensure_future(combiner.submit("k", n)) for n in (1, 2)]
    await recorder.started.wait()
    waiting = [asyncio.ensure_future(combiner.submit("k", n)) for n in (3, 4)]
    await asyncio.sleep(0)

    running[0].cancel()  # its batch runs on for the other caller
    waiting[0].cancel()  # left out of the next batch
    recorder.go.set()
    assert await running[1] == 20
    assert await waiting[1] == 40
    assert recorder.batches == [("k", [1, 2]), ("k", [4])]
