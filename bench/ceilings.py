"""The machine's own limits, measured in the same run: a single-row UPDATE loop on
PostgreSQL with pgbench (the hot-row ceiling), redis-benchmark for the Redis commands the
shop uses (GET/SET for the cache and token revocation, EVAL for rate limits), and argon2id
verifications at the production cost in one process per server worker (what any login
costs). The HTTP ceiling, the hello app, is run by bench/run.py like any wrk scenario."""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import re
import shutil
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import VerificationError
from redis import Redis
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.measure import Measurement, percentile, run_tool
from tienda.inventory.counters import RESERVE_SCRIPT

HOT_ROW_SQL = "UPDATE bench_hot_row SET n = n + 1 WHERE id = 1;\n"
# A rate-limit-like script: count and expire one key.
REDIS_EVAL = ("EVAL", "local n = redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], 60) return n", "1", "rl:k")
# The Redis strategy's own reservation script, as the shop runs it: one hot counter, a new order each call.
RESERVE_COUNTER = "bench:ceiling:inventory:p_hot/v_hot"
REDIS_RESERVE = (
    "EVAL",
    " ".join(RESERVE_SCRIPT.split()),
    "2",
    RESERVE_COUNTER,
    "bench:ceiling:order:__rand_int__",
    "1",
    "60",
)


class CeilingError(RuntimeError):
    pass


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise CeilingError(f"{name} is not installed (Debian: apt-get install postgresql-client redis-tools)")
    return found


async def create_hot_row(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS bench_hot_row (id int PRIMARY KEY, n bigint NOT NULL)"))
            await conn.execute(text("INSERT INTO bench_hot_row VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0"))
    finally:
        await engine.dispose()


PG_MAX_CLIENTS = 50
"""pgbench's connections at most: one hot row is as fast from 50 as from 200 (its lock
serialises them all), and PostgreSQL's default max_connections is 100."""


async def free_connections(database_url: str) -> int:
    """Connections pgbench may open: PG_MAX_CLIENTS, or fewer if the server has fewer free."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            limit = int((await conn.execute(text("SHOW max_connections"))).scalar_one())
            used = int((await conn.execute(text("SELECT count(*) FROM pg_stat_activity"))).scalar_one())
    finally:
        await engine.dispose()
    return max(1, min(limit - used - 10, PG_MAX_CLIENTS))


def pg_hot_row(
    database_url: str, *, concurrency: int, duration: float, work_dir: Path, max_clients: int | None = None
) -> Measurement:
    """pgbench: `concurrency` connections (at most `max_clients`) each updating the same row
    for `duration` seconds."""
    url = make_url(database_url)
    concurrency = min(concurrency, max_clients or concurrency)
    script = work_dir / "hot_row.sql"
    script.write_text(HOT_ROW_SQL)
    prefix = work_dir / f"pgbench_c{concurrency}"
    command = [
        tool("pgbench"),
        *("-n", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"),
        *(f"-c{concurrency}", f"-j{min(2, concurrency)}", f"-T{max(1, round(duration))}"),
        *("-f", str(script), "-l", f"--log-prefix={prefix}", url.database or "postgres"),
    ]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    result = run_tool(command, env=env, cwd=work_dir)
    if result.returncode != 0:
        raise CeilingError(f"pgbench exited with {result.returncode}:\n{result.output[-2000:]}")
    latencies, failed = _pgbench_log(work_dir.glob(f"{prefix.name}.*"))
    return _pgbench_measurement(result.output, latencies, failed, result.cpu_pct)


def _pgbench_log(files: Iterable[Path]) -> tuple[list[float], int]:
    """Per-transaction latencies (ms) from pgbench -l logs: `client tx latency_us script epoch us`."""
    latencies: list[float] = []
    failed = 0
    for path in files:
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1000)
            elif len(fields) >= 3:
                failed += 1
    latencies.sort()
    return latencies, failed


def _pgbench_measurement(output: str, latencies: list[float], failed: int, cpu_pct: float) -> Measurement:
    tps = re.search(r"^tps = ([\d.]+)", output, re.MULTILINE)
    done = re.search(r"number of transactions actually processed: (\d+)", output)
    if tps is None or done is None:
        raise CeilingError(f"cannot read pgbench's output:\n{output[-2000:]}")
    count, rate = int(done.group(1)), float(tps.group(1))
    return Measurement(
        requests=count,
        seconds=count / rate if rate else 0.0,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        errors=failed,
        error_kinds={"failed_transactions": failed} if failed else {},
        tool_cpu_pct=cpu_pct,
    )


REDIS_COMMANDS = ("get", "set", "eval")


def redis(redis_url: str, command: str, *, concurrency: int, requests: int) -> Measurement:
    """redis-benchmark of one of REDIS_COMMANDS, or "reserve" (the inventory's reservation
    script on a counter that never runs out), at `concurrency` clients."""
    url = urlsplit(redis_url)
    args = [
        tool("redis-benchmark"),
        *("-h", url.hostname or "127.0.0.1", "-p", str(url.port or 6379), "--dbnum", url.path.strip("/") or "0"),
        *("-c", str(concurrency), "-n", str(requests), "--csv"),
    ]
    if url.password:
        args += ["-a", url.password]
    if command == "reserve":
        with Redis.from_url(redis_url) as client:
            client.hset(RESERVE_COUNTER, mapping={"a": 10**15, "e": 1})
        args += ["-r", "100000000", *REDIS_RESERVE]
    else:
        args += list(REDIS_EVAL) if command == "eval" else ["-t", command]
    result = run_tool(args)
    if result.returncode != 0:
        raise CeilingError(f"redis-benchmark exited with {result.returncode}:\n{result.output[-2000:]}")
    found = parse_redis_csv(result.output, requests=requests, tool_cpu_pct=result.cpu_pct)
    return found["redis_eval" if command == "reserve" else f"redis_{command}"]


def parse_redis_csv(output: str, *, requests: int, tool_cpu_pct: float | None = None) -> dict[str, Measurement]:
    """redis-benchmark --csv rows, named redis_<command>; `requests` is the -n given, since
    the CSV has only the rate."""
    lines = [line for line in output.splitlines() if line.startswith('"')]
    found: dict[str, Measurement] = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        rps = float(row["rps"])
        name = "redis_" + row["test"].split()[0].lower()
        found[name] = Measurement(
            requests=requests,
            seconds=requests / rps if rps else 0.0,
            p50_ms=float(row["p50_latency_ms"]),
            p95_ms=float(row["p95_latency_ms"]),
            p99_ms=float(row["p99_latency_ms"]),
            tool_cpu_pct=tool_cpu_pct,
        )
    if not found:
        raise CeilingError(f"cannot read redis-benchmark's output:\n{output[-2000:]}")
    return found


def argon2(password_hash: str, password: str, *, processes: int, duration: float) -> Measurement:
    """`processes` processes verifying `password` against `password_hash` (made by the shop's
    hasher: its parameters are in it) back to back."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        began = time.perf_counter()
        futures = [pool.submit(_verify_loop, password_hash, password, duration) for _ in range(processes)]
        runs = [f.result() for f in futures]
        elapsed = time.perf_counter() - began
    latencies = sorted(ms for run in runs for ms in run)
    return Measurement(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        errors=sum(1 for ms in latencies if ms < 0),
    )


def _verify_loop(password_hash: str, password: str, duration: float) -> list[float]:
    """Latencies (ms) of verifications for `duration` seconds; a failed one counts as -1."""
    hasher = Argon2Hasher()
    latencies: list[float] = []
    deadline = time.perf_counter() + duration
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        try:
            hasher.verify(password_hash, password)
            latencies.append(1000 * (time.perf_counter() - began))
        except VerificationError:
            latencies.append(-1.0)
    return latencies
