"""`python -m bench.run`: measure the shop against the machine's own limits (see README.md).

Creates its own database, migrates it, loads a deterministic data set, measures the
ceilings (pgbench hot row, redis-benchmark, the hello app), then starts the shop in its
production configuration on each server and runs every scenario at fixed concurrencies.
Prints one table and writes it as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis import Redis

from bench import ceilings, data, flows, results, scenarios, split, wrk
from bench import profile as py_spy
from bench.measure import CpuWatch, Measurement, machine_busy_pct, process_tree, tree_busy_pct
from bench.results import NO_SERVER, Row
from bench.scenario import LoadContext, Scenario, Target
from bench.servers import BIN, SERVERS, Server, ServerFailed, app_command, app_env, free_port, hello_command
from tienda.app import ALL_MODULES
from tienda.platform.rabbitmq import RabbitBus
from tienda.platform.runtime import Platform
from tienda.settings import Settings

RESULTS_DIR = Path(__file__).parent / "results"
DEFAULT_CONCURRENCY = 32
NOISE_CPU_PCT = 25.0
"""More CPU than this (100 = one core) used by no party of the run marks a row noisy."""
SETTLED_CPU_PCT = 10.0
"""`tienda worker` below this much of one core has nothing left to do."""
SETTLE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Config:
    quick: bool
    users: int
    products: int
    duration: float
    warmup: float
    servers: tuple[str, ...]
    workers: int
    threads: int
    scenarios: tuple[Scenario, ...]
    split: bool
    """Also measure `split_checkout` on the split deployment (bench/split.py)."""
    postgres_url: str
    redis_url: str
    broker_url: str
    profile: Path | None = None
    """Sample the shop's processes with py-spy during each scenario row (bench/profile.py)."""

    def concurrencies(self, scenario: Scenario) -> tuple[int, ...]:
        return scenario.concurrencies[:1] if self.quick else scenario.concurrencies

    def ceiling_concurrencies(self, *names: str) -> tuple[int, ...]:
        wanted = {c for s in self.scenarios if s.ceiling in names for c in self.concurrencies(s)}
        return tuple(sorted(wanted)) or (DEFAULT_CONCURRENCY,)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 users, 3 s per run, first concurrency only")
    p.add_argument("--users", type=int, help="users in the data set (default 10000; --quick 1000)")
    p.add_argument("--products", type=int, help="products in the data set (default 100000; --quick 2000)")
    p.add_argument("--duration", type=float, help="seconds per measured run (default 10; --quick 3)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up per scenario (default 3; --quick 1)")
    p.add_argument("--server", choices=[*SERVERS, "both"], default="both", help="ASGI server(s) to measure")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server workers (default: cores)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (1 is fastest on 2 cores)")
    p.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="S", help="wait up to S s for an idle machine")
    p.add_argument("--profile", type=Path, metavar="DIR", help="py-spy every scenario row into DIR (profile.py)")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"), help="print B/A ratios and exit")
    env = os.environ.get
    p.add_argument(
        "--postgres-url", default=env("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    )
    p.add_argument("--redis-url", default=env("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    p.add_argument("--broker-url", default=env("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    return p.parse_args(argv)


def config_of(args: argparse.Namespace) -> Config:
    names = [name for name in args.scenario or () if name != split.NAME]
    return Config(
        quick=args.quick,
        users=args.users or (1000 if args.quick else 10_000),
        products=args.products if args.products is not None else (2_000 if args.quick else 100_000),
        duration=args.duration or (3.0 if args.quick else 10.0),
        warmup=args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0),
        servers=SERVERS if args.server == "both" else (args.server,),
        workers=args.workers,
        threads=args.threads,
        scenarios=scenarios.select(names) if names or not args.scenario else (),
        split=not args.scenario or split.NAME in args.scenario,
        postgres_url=args.postgres_url,
        redis_url=args.redis_url,
        broker_url=args.broker_url,
        profile=args.profile,
    )


def shop_env(cfg: Config, data_dir: Path) -> dict[str, str]:
    """The production configuration, and nothing from the caller's TIENDA_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIENDA_")}
    return (
        env
        | {
            "TIENDA_ENV": "production",
            "TIENDA_DATABASE_URL": data.database_url(cfg.postgres_url),
            "TIENDA_REDIS_URL": cfg.redis_url,
            "TIENDA_BROKER_URL": cfg.broker_url,
            "TIENDA_BROKER_PREFIX": "tienda-bench",
            "TIENDA_JWT_SECRET": secrets.token_urlsafe(48),
            "TIENDA_DATA_DIR": str(data_dir),
        }
        | {key: value for module in scenarios.MODULES for key, value in module.env.items()}
    )


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare(cfg: Config, settings: Settings, users: Sequence[data.BenchUser]) -> None:
    asyncio.run(data.recreate_database(cfg.postgres_url))
    subprocess.run([str(BIN / "tienda"), "migrate"], check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    _flush_redis(cfg.redis_url)
    asyncio.run(_purge_broker(settings))
    began = time.perf_counter()
    db_url = data.database_url(cfg.postgres_url)
    for module in scenarios.MODULES:
        context = LoadContext(
            settings=settings, database_url=db_url, users=users, quick=cfg.quick, products=cfg.products
        )
        asyncio.run(module.load(context))
    asyncio.run(data.analyze(db_url))
    say(f"data set loaded: {len(users):,} users, {cfg.products:,} products in {time.perf_counter() - began:.1f}s")


async def _purge_broker(settings: Settings) -> None:
    """The bench's queues start empty: events a killed run left there are about another data set."""
    platform = Platform.build(settings, ALL_MODULES)
    try:
        assert isinstance(platform.bus, RabbitBus), "the bench runs on RabbitMQ"
        await platform.bus.delete_queues([sub.consumer.name for sub in platform.subscriptions])
    finally:
        await platform.close()


def _flush_redis(url: str) -> None:
    """The bench's Redis database only (rate-limit windows and revocations of earlier runs)."""
    with Redis.from_url(url) as client:
        client.flushdb()


def machine_ceilings(cfg: Config, work: Path) -> list[Row]:
    rows: list[Row] = []
    db_url = data.database_url(cfg.postgres_url)
    asyncio.run(ceilings.create_hot_row(db_url))
    max_clients = asyncio.run(ceilings.free_connections(db_url))
    for c in cfg.ceiling_concurrencies("pg_hot_row"):
        watch = CpuWatch(None)
        m = ceilings.pg_hot_row(db_url, concurrency=c, duration=cfg.duration, work_dir=work, max_clients=max_clients)
        rows.append(_logged(Row.of("pg_hot_row", NO_SERVER, c, "pgbench", m, is_ceiling=True, cpu=watch.stop())))
    requests = 20_000 if cfg.quick else 200_000
    for c in cfg.ceiling_concurrencies("redis_get", "redis_set", "redis_eval"):
        for command in ceilings.REDIS_COMMANDS:
            watch = CpuWatch(None)
            m = ceilings.redis(cfg.redis_url, command, concurrency=c, requests=requests)
            row = Row.of(f"redis_{command}", NO_SERVER, c, "redis-benchmark", m, is_ceiling=True, cpu=watch.stop())
            rows.append(_logged(row))
    if any(s.ceiling == "redis_reserve" for s in cfg.scenarios):
        for c in cfg.ceiling_concurrencies("redis_reserve"):
            watch = CpuWatch(None)
            m = ceilings.redis(cfg.redis_url, "reserve", concurrency=c, requests=requests)
            row = Row.of("redis_reserve", NO_SERVER, c, "redis-benchmark", m, is_ceiling=True, cpu=watch.stop())
            rows.append(_logged(row))
    _flush_redis(cfg.redis_url)
    if any(s.ceiling == "argon2" for s in cfg.scenarios):
        settings = Settings()
        watch = CpuWatch(os.getpid())
        password_hash = asyncio.run(data.production_hash(settings))
        m = ceilings.argon2(password_hash, data.PASSWORD, processes=cfg.workers, duration=cfg.duration)
        row = Row.of("argon2", NO_SERVER, cfg.workers, "python", m, is_ceiling=True, cpu=watch.stop())
        rows.append(_logged(row))
    return rows


Load = Callable[[int, float], Measurement]
"""Runs some load at a concurrency for some seconds."""


def on_server(
    cfg: Config, server_name: str, settings: Settings, users: Sequence[data.BenchUser], work: Path, worker: Server
) -> list[Row]:
    rows: list[Row] = []
    port = free_port()
    with Server(
        hello_command(server_name, port, cfg.workers), port=port, log=work / f"hello-{server_name}.log"
    ) as hello:
        hello.wait_ready("/")
        url = hello.base_url + "/"

        def hello_load(c: int, seconds: float) -> Measurement:
            return wrk.run(url, "hello.lua", concurrency=c, duration=seconds, threads=cfg.threads)

        for c in cfg.ceiling_concurrencies("hello"):
            hello_load(c, cfg.warmup)
            m, cpu = _measure(hello, None, hello_load, c, cfg.duration)
            rows.append(_logged(Row.of("hello", server_name, c, "wrk", m, is_ceiling=True, cpu=cpu)))
    port = free_port()
    env = os.environ | app_env(server_name, cfg.workers, work / f"metrics-{server_name}")
    command = app_command(server_name, port, cfg.workers)
    with Server(command, port=port, log=work / f"shop-{server_name}.log", env=env) as shop:
        shop.wait_ready("/readyz", timeout=120.0)  # a shop that imports everything starts slowly on a busy machine
        minter = data.TokenMinter(settings)
        products = asyncio.run(data.sample_products(data.database_url(cfg.postgres_url)))
        target = Target(
            base_url=shop.base_url,
            server=server_name,
            database_url=data.database_url(cfg.postgres_url),
            users=users,
            password=data.PASSWORD,
            token_for=minter,
            products=products,
            admin_token=minter.admin(),
        )
        for scenario in cfg.scenarios:
            rows.extend(_scenario(cfg, shop, worker, scenario, target, work))
    return rows


def _scenario(cfg: Config, shop: Server, worker: Server, scenario: Scenario, target: Target, work: Path) -> list[Row]:
    data_rows = scenario.rows(target)
    load = _loader(cfg, shop.base_url, scenario, data_rows, data.write_rows(work / f"{scenario.name}.tsv", data_rows))
    concurrencies = cfg.concurrencies(scenario)
    if scenario.prime is not None:
        asyncio.run(scenario.prime(target))
    load(max(concurrencies), cfg.warmup)
    asyncio.run(data.analyze(target.database_url))
    rows: list[Row] = []
    for c in concurrencies:
        # Each row is measured beside the events of its own load only, not the backlog that the
        # warm-up (at the highest concurrency) or the row before left to the worker.
        _settle(worker, f"{scenario.name} at c={rows[-1].concurrency}" if rows else f"the warm-up of {scenario.name}")
        m, cpu = _measure(shop, worker, load, c, cfg.duration, profile=_profiling(cfg, scenario, c, target.server))
        row = Row.of(scenario.name, target.server, c, scenario.tool, m, ceiling=scenario.ceiling, cpu=cpu)
        rows.append(_logged(row))
    if scenario.check is not None:
        problems = asyncio.run(scenario.check(target))
        for row in rows:
            row.error_kinds.update({f"check: {p}": 1 for p in problems})
            row.errors += len(problems)
    _settle(worker, scenario.name)
    return rows


def _settle(worker: Server, after: str) -> None:
    """Wait until `tienda worker` has handled the events a run left behind (its CPU is quiet):
    else the next run is measured beside that backlog. The carts rows after the reservation
    rows shared the machine with a worker at 50% handling 12,000 stock events; the first row
    of a scenario shared it with the backlog of the warm-up."""
    began = time.monotonic()
    while tree_busy_pct(worker.pid) > SETTLED_CPU_PCT:
        if time.monotonic() - began > SETTLE_TIMEOUT_S:
            say(f"  warning: the worker is still busy {SETTLE_TIMEOUT_S:.0f}s after {after}; going on")
            return
    waited = time.monotonic() - began
    if waited > 1.5:
        say(f"  waited {waited:.0f}s for the worker to handle what {after} left")


def _loader(cfg: Config, base_url: str, scenario: Scenario, data_rows: Sequence[Sequence[str]], path: Path) -> Load:
    lua, flow = scenario.lua, scenario.flow
    if lua is not None:
        return lambda c, seconds: wrk.run(
            base_url, lua, concurrency=c, duration=seconds, threads=cfg.threads, data=path
        )
    assert flow is not None
    return lambda c, seconds: flows.run(base_url, flow, data_rows, concurrency=c, duration=seconds)


def _profiling(cfg: Config, scenario: Scenario, concurrency: int, server: str) -> tuple[Path, str] | None:
    return None if cfg.profile is None else (cfg.profile, f"{scenario.name}-{server}-c{concurrency}")


def _measure(
    server: Server,
    worker: Server | None,
    load: Load,
    concurrency: int,
    seconds: float,
    *,
    profile: tuple[Path, str] | None = None,
) -> tuple[Measurement, dict[str, Any]]:
    """The load's measurement and who used the CPU meanwhile (see CpuWatch); with `profile`
    (directory, label), py-spy samples the server's and the worker's processes meanwhile."""
    watch = CpuWatch(server.pid, worker_root=None if worker is None else worker.pid)
    if profile is None or server.pid is None:
        return load(concurrency, seconds), watch.stop()
    directory, label = profile
    roles = [("server", pid) for pid in process_tree(server.pid)]
    roles += [] if worker is None or worker.pid is None else [("worker", pid) for pid in process_tree(worker.pid)]
    recording = py_spy.record(directory, label, roles, seconds)
    m = load(concurrency, seconds)
    recording.wait()
    for role in ("server", "worker"):
        summary = py_spy.summary([f for f in recording.files if f"-{role}-" in f.name])
        (directory / f"{label}-{role}.summary.txt").write_text(summary + "\n")
        say(f"  profile of the {role} during {label}:\n" + "\n".join(summary.splitlines()[:40]))
    return m, watch.stop()


def _logged(row: Row) -> Row:
    say(
        f"  {row.name:<14} {row.server:<8} c={row.concurrency:<3} {row.rps:>10,.1f}/s"
        f"  p99 {row.p99_ms:>8.2f} ms  errors {row.errors}"
    )
    return row


def measure_all(cfg: Config, work: Path) -> list[Row]:
    rows: list[Row] = []
    if cfg.scenarios:
        settings = Settings()
        users = data.make_users(cfg.users)
        prepare(cfg, settings, users)
        rows += machine_ceilings(cfg, work)
        # Production runs the outbox relay and the consumers in `tienda worker`, beside the API.
        with Server([str(BIN / "tienda"), "worker"], port=0, log=work / "worker.log") as worker:
            for server_name in cfg.servers:
                say(f"{server_name}: {cfg.workers} workers")
                rows += on_server(cfg, server_name, settings, users, work, worker)
    if cfg.split:
        say("split deployment: every module its own serve and worker process, nginx in front")
        rows += [
            _logged(row)
            for row in split.measure(
                postgres_url=cfg.postgres_url,
                redis_url=cfg.redis_url,
                broker_url=cfg.broker_url,
                concurrencies=split.CONCURRENCIES[:1] if cfg.quick else split.CONCURRENCIES,
                duration=cfg.duration,
                warmup=cfg.warmup,
            )
        ]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare:
        print(results.compare(results.load(args.compare[0]), results.load(args.compare[1])))
        return 0
    cfg = config_of(args)
    missing = [t for t in ("wrk", "pgbench", "redis-benchmark") if shutil.which(t) is None]
    if missing:
        say(f"missing tools: {', '.join(missing)} (Debian: apt-get install wrk postgresql-client redis-tools)")
        return 2
    busy, deadline = machine_busy_pct(), time.monotonic() + args.wait_quiet
    while busy > NOISE_CPU_PCT and time.monotonic() < deadline:
        say(f"the machine is {busy:.0f}% busy (100 = one core); waiting for it to settle")
        busy = machine_busy_pct(5)
    if busy > NOISE_CPU_PCT:
        say(f"warning: the machine is already {busy:.0f}% busy (100 = one core); figures will be noisy")
    started, began = datetime.now(UTC), time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="tienda-bench-"))
    for key in [k for k in os.environ if k.startswith("TIENDA_")]:
        del os.environ[key]
    os.environ.update(shop_env(cfg, work / "data"))
    try:
        rows = measure_all(cfg, work)
    except (ServerFailed, wrk.WrkError, ceilings.CeilingError, subprocess.CalledProcessError) as exc:
        say(f"bench failed: {exc}\nlogs kept in {work}")
        return 1
    results.attach_ratios(rows)
    elapsed = time.perf_counter() - began
    problems = [f"{r.name} {r.server} c={r.concurrency}: {r.errors} errors {r.error_kinds}" for r in rows if r.errors]
    noisy = [
        f"{r.name} {r.server} c={r.concurrency}: {r.cpu['other']:.0f}% CPU used outside the watched processes"
        for r in rows
        if r.cpu.get("other", 0) > NOISE_CPU_PCT
    ]
    meta: dict[str, Any] = {
        "started_at": started.isoformat(),
        "elapsed_s": round(elapsed, 1),
        "machine": results.machine(),
        "config": {
            "quick": cfg.quick,
            "users": cfg.users,
            "products": cfg.products,
            "duration_s": cfg.duration,
            "workers": cfg.workers,
            "wrk_threads": cfg.threads,
            "servers": list(cfg.servers),
            "scenarios": [s.name for s in cfg.scenarios],
        },
        "valid": not problems,
        "problems": problems,
        "noisy": noisy,
    }
    out = results.save(RESULTS_DIR / f"{started:%Y%m%dT%H%M%SZ}.json", rows=rows, meta=meta)
    print(results.table(rows))
    if flow_steps := results.steps(rows):
        print("\n" + flow_steps)
    m = meta["machine"]
    print(f"\n{m['nproc']} cores, {m['memory_gib']} GiB, {m['cpu_model']}; {elapsed:.0f}s; written to {out}")
    if noisy:
        print(
            "NOISY (another program, or PostgreSQL backends too short-lived to sample; see README):\n  "
            + "\n  ".join(noisy)
        )
    if problems:
        print("INVALID run (errors must be zero):\n  " + "\n  ".join(problems))
        print(f"server logs kept in {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
