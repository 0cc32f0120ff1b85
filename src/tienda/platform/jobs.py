"""Scheduled jobs: small periodic tasks a module runs in the worker (and in `tienda dev`),
e.g. releasing expired stock reservations. Each run is its own unit of work; a failing run is
logged and tried again at the next tick. Running them in several workers at once is safe:
jobs pick their rows with SKIP LOCKED."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from tienda.platform.observability import get_logger

log = get_logger("tienda.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    interval_seconds: float
    run: Callable[[], Awaitable[int]]
    """Does one round; returns how many things it handled (logged when not zero)."""


@dataclass
class JobRunner:
    jobs: Sequence[Job]
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(job), name=f"job:{job.name}") for job in self.jobs]

    async def run_all_once(self) -> dict[str, int]:
        return {job.name: await job.run() for job in self.jobs}

    async def _loop(self, job: Job) -> None:
        while True:
            try:
                handled = await job.run()
                if handled:
                    log.info("job_ran", job=job.name, handled=handled)
            except Exception as exc:
                log.error("job_failed", job=job.name, error=repr(exc))
            await asyncio.sleep(job.interval_seconds)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
