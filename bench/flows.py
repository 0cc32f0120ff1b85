"""The asyncio load client for multi-step flows (sign in then act, cart then checkout...),
which wrk's one-request scripts cannot express: `concurrency` tasks share one client whose
pool keeps that many connections alive, each task runs the flow again and again on its own
walk through the rows until the time is up.

The client is aiohttp's: httpx (the tests' client) spent most of a core at ~110 requests/s
and became the bottleneck of the shop-day mix. Flows see only `get`/`post` and a response's
`status_code`, `text`, `content`, `json()` and `elapsed`, which both clients give, so the
smoke test can still drive a flow through httpx against an app in process."""

from __future__ import annotations

import asyncio
import json as json_module
import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import aiohttp
import httpx

from bench.measure import Measurement, percentile


class FlowResponse(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def content(self) -> bytes: ...

    @property
    def elapsed(self) -> timedelta: ...

    def json(self) -> Any: ...


class FlowClient(Protocol):
    async def get(self, url: str, *, headers: Mapping[str, str] | None = ...) -> Any: ...

    async def post(
        self,
        url: str,
        *,
        json: Any = ...,
        content: bytes | None = ...,
        headers: Mapping[str, str] | None = ...,
    ) -> Any: ...


@dataclass(frozen=True)
class Answer:
    """A response as flows read it (what `httpx.Response` also offers)."""

    status_code: int
    content: bytes
    elapsed: timedelta

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json_module.loads(self.content)


class AiohttpClient:
    """`FlowClient` on aiohttp: one pooled session, the body read whole, the time taken kept."""

    def __init__(self, base_url: str, concurrency: int, *, local_address: str | None = None) -> None:
        connector = aiohttp.TCPConnector(
            limit=concurrency,
            limit_per_host=concurrency,
            force_close=False,
            local_addr=(local_address, 0) if local_address else None,
        )
        self.session = aiohttp.ClientSession(
            base_url=base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        )

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Answer:
        return await self._send("GET", url, headers=headers)

    async def post(
        self,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        return await self._send("POST", url, json=json, data=content, headers=headers)

    async def _send(self, method: str, url: str, **kwargs: Any) -> Answer:
        began = time.perf_counter()
        async with self.session.request(method, url, **kwargs) as response:
            body = await response.read()
        return Answer(response.status, body, timedelta(seconds=time.perf_counter() - began))

    async def close(self) -> None:
        await self.session.close()


Flow = Callable[[FlowClient, Sequence[str]], Awaitable[None]]
"""One user journey: given the client and one data row, make its requests; raise FlowFailed."""


class FlowFailed(Exception):
    def __init__(self, step: str, status: int, body: str = "") -> None:
        super().__init__(f"{step}: HTTP {status} {body[:200]}")
        self.step = step
        self.status = status
        try:
            self.code = str(json_module.loads(body).get("code") or "")
        except (ValueError, AttributeError):
            self.code = ""

    @property
    def kind(self) -> str:
        """How the run's error counts name it: the step, the status and the envelope's code."""
        return f"{self.step}_http_{self.status}" + (f"_{self.code}" if self.code else "")


_steps: ContextVar[dict[str, list[float]] | None] = ContextVar("bench_flow_steps", default=None)
"""Each step's latencies (seconds) in the running flow measurement, by step name."""


def expect(response: FlowResponse, step: str, status: int = 200) -> Any:
    """The response's JSON body if it has the expected status, else FlowFailed. Its latency
    counts toward the step's percentiles."""
    collector = _steps.get()
    if collector is not None:
        collector.setdefault(step, []).append(response.elapsed.total_seconds())
    if response.status_code != status:
        raise FlowFailed(step, response.status_code, response.text)
    return response.json() if response.content else None


async def run_flow(
    clients: Sequence[FlowClient],
    flow: Flow,
    rows: Sequence[Sequence[str]],
    *,
    concurrency: int,
    duration: float,
) -> Measurement:
    """Runs `flow` for `duration` seconds with `concurrency` tasks; latency is per whole flow.
    Task k sends through `clients[k % len(clients)]`: one shared pooled client, or one per
    buyer when each must come from its own address (a gateway that limits per client IP)."""
    if not rows or not clients:
        raise ValueError("a flow needs at least one data row and one client")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration
    latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def worker(k: int) -> None:
        # Task k cycles over rows k, k + concurrency, ...: a row (a buyer) is never in two
        # flows at once, as one shopper does one thing at a time (two checkouts of one cart at
        # once would empty it under each other). Fewer rows than tasks: they share.
        mine = rows[k::concurrency] or rows
        client = clients[k % len(clients)]
        index = 0
        while loop.time() < deadline:
            row = mine[index % len(mine)]
            index += 1
            began = time.perf_counter()
            try:
                await flow(client, row)
            except FlowFailed as exc:
                errors[exc.kind] += 1
                continue
            except (httpx.HTTPError, aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - began)

    steps: dict[str, list[float]] = {}
    token = _steps.set(steps)  # the workers' tasks inherit it
    cpu_before = _own_cpu()
    began = time.perf_counter()
    try:
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
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


def run(base_url: str, flow: Flow, rows: Sequence[Sequence[str]], *, concurrency: int, duration: float) -> Measurement:
    """Blocking entry for the harness: a fresh event loop (uvloop when installed) and client."""

    async def main() -> Measurement:
        # One pooled client: connections are reused across flows, as a browser would.
        client = AiohttpClient(base_url, concurrency)
        try:
            return await run_flow([client], flow, rows, concurrency=concurrency, duration=duration)
        finally:
            await client.close()

    with runner() as loop_runner:
        return loop_runner.run(main())


async def read_each(base_url: str, paths: Sequence[str], *, concurrency: int = 32) -> None:
    """GETs every path once (a warm-up that fills a cache: time-boxed warm-ups left part of a
    large data set cold, and its misses showed as the measured run's p99)."""
    client = AiohttpClient(base_url, concurrency)
    gate = asyncio.Semaphore(concurrency)

    async def read(path: str) -> None:
        async with gate:
            expect(await client.get(path), "warm-up")

    try:
        await asyncio.gather(*(read(path) for path in paths))
    finally:
        await client.close()


def runner() -> asyncio.Runner:
    """An event loop for a measurement: uvloop's when installed, as the servers run."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        factory = None
    return asyncio.Runner(loop_factory=factory)
