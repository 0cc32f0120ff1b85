"""The split deployment on this machine, as real processes: for each module its own
PostgreSQL database (throwaway), `tienda migrate --service M`, one `tienda serve --service M`
on its own loopback port and one `tienda worker --service M`; the real Redis and RabbitMQ of
the test environment (a key prefix and a broker prefix of their own); nginx with the
gateway's configuration (deploy/nginx) in front.

    async with SplitDeployment(workdir) as split:
        httpx.get(f"{split.gateway}/api/v1/products")

Everything it started is stopped, and the databases, queues and Redis keys it made are
deleted, when the block ends, whatever happened. `logs()` gives the tail of every process's
log (each writes to `workdir/logs/<module>-<role>.log`).

Without nginx, PostgreSQL, Redis or RabbitMQ the test using it skips and says which is
missing; with `CI=true` it fails instead (tests/backends.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx
from pydantic import SecretStr
from redis.asyncio import Redis

from tests import backends
from tests.deploy.gateway import free_port, nginx_binary, running_gateway
from tienda.app import ALL_MODULES
from tienda.platform.runtime import Platform
from tienda.settings import Settings

TIENDA = str(Path(sys.executable).with_name("tienda"))
SERVICES: tuple[str, ...] = ("users", "catalog", "search", "carts", "inventory", "orders", "payments", "notifications")
CALLED: tuple[str, ...] = ("users", "catalog", "carts", "inventory", "payments")
"""The modules other services call over HTTP (each has a `TIENDA_<MODULE>_URL` setting)."""
ADMIN_EMAIL = "admin@split.example.com"
ADMIN_PASSWORD = "Split-admin-1"
START_TIMEOUT = 180.0


@dataclass
class Process:
    """One `tienda` process of the deployment; its output goes to `log` (appended across restarts)."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"--- {time.strftime('%H:%M:%S')} start: tienda {' '.join(self.args)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                [TIENDA, *self.args], stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash or an OOM kill."""
        if self.alive():
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait(timeout=10)

    def stop(self, grace: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


@dataclass
class Service:
    """One module as deployed: its database, data dir, port, API process and worker process."""

    name: str
    database_url: str
    admin_url: str
    data_dir: Path
    port: int
    serve: Process | None = None
    worker: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class SplitDeployment:
    workdir: Path
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    services: dict[str, Service] = field(default_factory=dict)
    gateway: str = ""
    sandbox_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    timings: dict[str, float] = field(default_factory=dict)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _processes: list[Process] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"tienda-e2e-{self.run_id}"

    # -- starting -------------------------------------------------------------------------

    async def __aenter__(self) -> SplitDeployment:
        nginx_binary()  # skips (fails on CI) without nginx
        self.postgres_url = backends.url_of("postgres")
        self.redis_url = backends.url_of("redis")
        self.amqp_url = backends.url_of("amqp")
        await _reachable(self.redis_url, self.amqp_url)
        try:
            await self._start()
        except BaseException:
            print(self.logs(), flush=True)  # the test's captured output shows why it did not start
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _start(self) -> None:
        began = time.monotonic()
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        created = await asyncio.gather(
            *(backends.create_database("postgres") for _ in SERVICES), return_exceptions=True
        )
        for name, made in zip(SERVICES, created, strict=True):
            if isinstance(made, tuple):  # kept even if another failed, so that it is dropped
                url, admin = made
                self.services[name] = Service(name, url, admin, self.workdir / name, free_port())
        for made in created:
            if isinstance(made, BaseException):
                raise made
        gateway_port = free_port()
        self.gateway = f"http://127.0.0.1:{gateway_port}"
        self.timings["databases"] = time.monotonic() - began

        migrations = [self._process(name, "migrate", ["migrate", "--service", name]) for name in SERVICES]
        for process in migrations:
            process.start()
        await _all_exit(migrations, within=START_TIMEOUT)
        self.timings["migrations"] = time.monotonic() - began

        for name, service in self.services.items():
            service.serve = self._process(
                name,
                "serve",
                ["serve", "--service", name, "--host", "127.0.0.1", "--port", str(service.port), "--workers", "1"],
            )
            service.worker = self._process(name, "worker", ["worker", "--service", name])
            service.serve.start()
            if name != "search":
                service.worker.start()
        admin = self._process(
            "users", "create-admin", ["create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD]
        )
        # create-admin builds every module (it migrates them all first): it gets every database.
        admin.env.update({f"TIENDA_{s.name.upper()}_DATABASE_URL": s.database_url for s in self.services.values()})
        admin.start()
        self._stack.enter_context(
            running_gateway(
                {name: f"127.0.0.1:{s.port}" for name, s in self.services.items()},
                workdir=self.workdir / "gateway",
                port=gateway_port,
            )
        )
        await asyncio.gather(
            *(self.wait_ready(name) for name in self.services),
            self._start_search_worker(),
            *(self._wait_worker(s) for s in self.services.values()),
            _all_exit([admin], within=START_TIMEOUT),
        )
        self.timings["ready"] = time.monotonic() - began

    async def _start_search_worker(self) -> None:
        """The search worker builds its index from the catalog's API on its first start, and
        exits if the catalog does not answer (compose and Kubernetes restart it): it starts
        once the catalog is ready."""
        await self.wait_ready("catalog")
        worker = self.services["search"].worker
        assert worker is not None
        worker.start()

    def _env(self, service: Service) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIENDA_")}
        env.update(
            {
                "TIENDA_ENV": "production",
                "TIENDA_DATA_DIR": str(service.data_dir),
                f"TIENDA_{service.name.upper()}_DATABASE_URL": service.database_url,
                "TIENDA_JWT_SECRET": self.jwt_secret,
                "TIENDA_REDIS_URL": self.redis_url,
                "TIENDA_REDIS_PREFIX": f"{self.prefix}:",
                "TIENDA_BROKER_URL": self.amqp_url,
                "TIENDA_BROKER_PREFIX": self.prefix,
                "TIENDA_SANDBOX_PAYMENTS": "true",
                "TIENDA_SANDBOX_WEBHOOK_SECRET": self.sandbox_secret,
                "TIENDA_PUBLIC_BASE_URL": self.gateway,
                # 16 processes on one PostgreSQL (max_connections 100, shared with other tests).
                "TIENDA_DB_POOL_SIZE": "4",
                # The worker's scheduled jobs (the orders saga's resume, the reservation sweep) every 2 s.
                "TIENDA_RESERVATION_SWEEP_SECONDS": "2",
            }
        )
        env.update({f"TIENDA_{name.upper()}_URL": self.services[name].url for name in CALLED})
        return env

    def _process(self, module: str, role: str, args: list[str]) -> Process:
        service = self.services[module]
        process = Process(f"{module}-{role}", args, self._env(service), self.workdir / "logs" / f"{module}-{role}.log")
        self._processes.append(process)
        return process

    async def wait_ready(self, name: str, within: float = START_TIMEOUT) -> None:
        """Until the service's own `/readyz` answers 200 (its database, Redis and the broker answer)."""
        service = self.services[name]
        assert service.serve is not None
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if not service.serve.alive():
                    raise AssertionError(f"{service.serve.name} exited:\n{service.serve.tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{service.url}/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name} was not ready after {within:.0f}s:\n{service.serve.tail()}")
                await asyncio.sleep(0.2)

    async def _wait_worker(self, service: Service) -> None:
        """Until the worker has bound its consumers' queues (events published before would be lost to them)."""
        worker = service.worker
        assert worker is not None
        deadline = time.monotonic() + START_TIMEOUT
        while "Worker running for" not in worker.output():
            if worker.popen is not None and not worker.alive():  # (None: not started yet)
                raise AssertionError(f"{worker.name} exited:\n{worker.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{worker.name} did not start:\n{worker.tail()}")
            await asyncio.sleep(0.2)

    # -- during the test ------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL the service's API process (its worker keeps running)."""
        serve = self.services[name].serve
        assert serve is not None
        serve.kill()

    async def restart(self, name: str) -> None:
        serve = self.services[name].serve
        assert serve is not None
        assert not serve.alive()
        serve.start()
        await self.wait_ready(name)

    def logs(self, lines: int = 60) -> str:
        parts = [
            f"===== {p.name} (pid {p.popen.pid if p.popen else '-'}) {p.log}\n{p.tail(lines)}" for p in self._processes
        ]
        nginx_log = self.workdir / "gateway" / "nginx.log"
        if nginx_log.exists():
            parts.append(f"===== nginx {nginx_log}\n" + "\n".join(nginx_log.read_text().splitlines()[-lines:]))
        return "\n".join(parts)

    @contextlib.contextmanager
    def logs_on_failure(self) -> Any:
        """Prints every process's log tail when the block fails (shown with the failed test)."""
        try:
            yield
        except BaseException:
            print(self.logs(), flush=True)
            raise

    # -- stopping -------------------------------------------------------------------------

    async def aclose(self) -> None:
        errors: list[BaseException] = []
        for process in self._processes:
            try:
                process.stop()
            except Exception as exc:  # go on stopping the others
                errors.append(exc)
        try:
            self._stack.close()  # nginx
        except Exception as exc:
            errors.append(exc)
        for service in self.services.values():
            try:
                await backends.drop_database("postgres", service.database_url, service.admin_url)
            except Exception as exc:
                errors.append(exc)
        if getattr(self, "amqp_url", None):
            try:
                await _delete_broker_objects(self.amqp_url, self.prefix, self.workdir)
            except Exception as exc:
                errors.append(exc)
        if getattr(self, "redis_url", None):
            try:
                await _delete_keys(self.redis_url, f"{self.prefix}:")
            except Exception as exc:
                errors.append(exc)
        self.services.clear()
        if errors:
            raise errors[0]


async def _reachable(redis_url: str, amqp_url: str) -> None:
    try:
        async with Redis.from_url(redis_url, socket_connect_timeout=3) as client:
            await client.ping()
    except Exception as exc:
        backends.unreachable("redis", exc)
    try:
        connection = await aio_pika.connect(amqp_url, timeout=5)
        await connection.close()
    except Exception as exc:
        backends.unreachable("amqp", exc)


async def _all_exit(processes: list[Process], *, within: float) -> None:
    deadline = time.monotonic() + within
    for process in processes:
        assert process.popen is not None
        while process.popen.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{process.name} did not finish in {within:.0f}s:\n{process.tail()}")
            await asyncio.sleep(0.1)
        if process.popen.returncode != 0:
            raise AssertionError(f"{process.name} failed ({process.popen.returncode}):\n{process.tail()}")


async def consumer_names(workdir: Path) -> list[str]:
    """Every module's consumers, i.e. the queues (`<prefix>.<consumer>`) the workers declare."""
    settings = Settings(env="test", data_dir=workdir / "names", jwt_secret=SecretStr("names-only"))
    platform = Platform.build(settings, ALL_MODULES)
    try:
        return [sub.consumer.name for sub in platform.subscriptions]
    finally:
        await platform.close()


async def dead_letters(amqp_url: str, prefix: str) -> int:
    """Messages parked in the deployment's dead-letter queue."""
    connection = await aio_pika.connect(amqp_url, timeout=5)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{prefix}.dead-letters", passive=True)
        return int(queue.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def _delete_broker_objects(amqp_url: str, prefix: str, workdir: Path) -> None:
    connection = await aio_pika.connect(amqp_url, timeout=5)
    try:
        channel = await connection.channel()
        for name in [*await consumer_names(workdir), "dead-letters"]:
            await channel.queue_delete(f"{prefix}.{name}")
        await channel.exchange_delete(f"{prefix}.events")
    finally:
        await connection.close()


async def _delete_keys(redis_url: str, prefix: str) -> None:
    async with Redis.from_url(redis_url) as client:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
