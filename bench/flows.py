"""The asyncio load client for multi-step flows (sign in then act, cart then checkout...),
which wrk's one-request scripts cannot express: `concurrency` tasks share one httpx client
whose pool keeps that many connections alive, each task runs the flow again and again on
its own walk through the rows until the time is up."""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any

import httpx

from bench.measure import Measurement, percentile

Flow = Callable[[httpx.AsyncClient, Sequence[str]], Awaitable[None]]
"""One user journey: given the client and one data row, make its requests; raise FlowFailed."""


class FlowFailed(Exception):
    def __init__(self, step: str, status: int, body: str = "") -> None:
        super().__init__(f"{step}: HTTP {status} {body[:200]}")
        self.step = step
        self.status = status


_steps: ContextVar[dict[str, list[float]] | None] = ContextVar("bench_flow_steps", default=None)
"""Each step's latencies (seconds) in the running flow measurement, by step name."""


def expect(response: httpx.Response, step: str, status: int = 200) -> Any:
    """The response's JSON body if it has the expected status, else FlowFailed. Its latency
    counts toward the step's percentiles."""
    collector = _steps.get()
    if collector is not None:
        collector.setdefault(step, []).append(response.elapsed.total_seconds())
    if response.status_code != status:
        raise FlowFailed(step, response.status_code, response.text)
    return response.json() if response.content else None


async def run_flow(
    client: httpx.AsyncClient,
    flow: Flow,
    rows: Sequence[Sequence[str]],
    *,
    concurrency: int,
    duration: float,
) -> Measurement:
    """Runs `flow` for `duration` seconds with `concurrency` tasks; latency is per whole flow."""
    if not rows:
        raise ValueError("a flow needs at least one data row")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration
    latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def worker(start: int) -> None:
        index = start
        while loop.time() < deadline:
            row = rows[index % len(rows)]
            index += 1
            began = time.perf_counter()
            try:
                await flow(client, row)
            except FlowFailed as exc:
                errors[f"{exc.step}_http_{exc.status}"] += 1
                continue
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - began)

    steps: dict[str, list[float]] = {}
    token = _steps.set(steps)  # the workers' tasks inherit it
    cpu_before = _own_cpu()
    began = time.perf_counter()
    try:
        await asyncio.gather(*(worker(k * len(rows) // concurrency) for k in range(concurrency)))
    finally:
        _steps.reset(token)
    elapsed = time.perf_counter() - began
    cpu = _own_cpu() - cpu_before
    latencies.sort()
    return Measurement(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=1000 * percentile(latencies, 50),
        p95_ms=1000 * percentile(latencies, 95),
        p99_ms=1000 * percentile(latencies, 99),
        errors=sum(errors.values()),
        error_kinds=dict(errors),
        tool_cpu_pct=100 * cpu / elapsed if elapsed > 0 else None,
        steps={name: _percentiles(sorted(values)) for name, values in steps.items()},
    )


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    return {f"p{q}_ms": round(1000 * percentile(values, q), 2) for q in (50, 95, 99)} | {"count": len(values)}


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def new_client(base_url: str, concurrency: int) -> httpx.AsyncClient:
    """One pooled client: connections are reused across flows, as a browser would."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=httpx.Timeout(30.0))


def run(base_url: str, flow: Flow, rows: Sequence[Sequence[str]], *, concurrency: int, duration: float) -> Measurement:
    """Blocking entry for the harness: a fresh event loop (uvloop when installed) and client."""

    async def main() -> Measurement:
        async with new_client(base_url, concurrency) as client:
            return await run_flow(client, flow, rows, concurrency=concurrency, duration=duration)

    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())
