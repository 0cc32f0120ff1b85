"""The shared infrastructure of one running process, built once from settings."""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from sqlalchemy.ext.asyncio import AsyncEngine

from tienda.platform.auth import PasswordHasher, TokenService
from tienda.platform.cache import Cache, MemoryCache, RedisCache
from tienda.platform.clock import Clock, SystemClock
from tienda.platform.db import Database, engine_for
from tienda.platform.events import EventBus, InProcessBus, OutboxRelay, Subscription, prune_published
from tienda.platform.http import Remote, Remotes, RetryPolicy
from tienda.platform.jobs import Job, JobRunner
from tienda.platform.mail import FileMailer, Mailer, SmtpMailer
from tienda.platform.migrations import upgrade
from tienda.platform.modules import ModuleSpec
from tienda.platform.rabbitmq import RabbitBus
from tienda.platform.ratelimit import RateLimiter
from tienda.platform.web import Check
from tienda.settings import Settings

T = TypeVar("T")

REDIS_CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection to Redis. Long enough that a process whose event loop lags
under overload does not turn a slow connect into an error (5 s failed a login in CI on a
machine running sixteen shop processes on two cores), short enough that an unreachable host
fails the request in seconds."""
REDIS_KEEPALIVE = {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 5, socket.TCP_KEEPCNT: 3}
REDIS_CONNECTIONS = 2000
"""Redis connections one process may open, one per command in flight. Past it a command fails
('Too many connections'): far above what a process's requests hold at once, and far below
Redis's own limit of 10,000 clients."""
Local = TypeVar("Local")
Over = TypeVar("Over")

YOUNG_COLLECTION_THRESHOLD = 10_000
"""Tracked objects allocated (less those freed) before the collector walks the young ones.
Python's 700 is passed by what 32 requests in flight hold alive at once, so the collector ran
about every 30 cart writes to find almost nothing: 17 us of a 450 us request, and a full
collection (up to 5 ms) every few seconds. At 10,000 it ran once or twice in 20,000."""


def settle_collector() -> None:
    """Once a process has started (the app's lifespan, `tienda worker`): what start-up made lives
    as long as the process, so it is frozen out of the collector's walks (full collections
    walked it all, pauses that showed in the p99), and young objects wait for
    `YOUNG_COLLECTION_THRESHOLD`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


@dataclass
class Platform:
    settings: Settings
    modules: dict[str, ModuleSpec]
    clock: Clock
    cache: Cache
    limiter: RateLimiter
    tokens: TokenService
    passwords: PasswordHasher
    mailer: Mailer
    databases: dict[str, Database]
    bus: EventBus
    relay: OutboxRelay
    subscriptions: list[Subscription] = field(default_factory=list)
    redis: Redis | None = None
    remotes: Remotes | None = None
    """The other modules' services, for the modules that do not run in this process."""
    services: dict[str, Any] = field(default_factory=dict)
    """The modules' services of this process, each built once, on first use."""
    jobs: JobRunner = field(default_factory=lambda: JobRunner(()))
    """The modules' scheduled jobs; started by the worker (and by a process relaying its own events)."""

    @classmethod
    def build(cls, settings: Settings, modules: Sequence[ModuleSpec], *, clock: Clock | None = None) -> Platform:
        clock = clock or SystemClock()
        # A pool as large as a process could need (redis-py's default of 100 connections turned
        # 200 concurrent requests in one process into 500s): not a blocking pool, whose
        # condition variable and timeout on every command cost a cached read a tenth of its
        # time. Given a pool, redis-py leaves retries to it: the same as its default client's
        # (a connection broken by a Redis restart is reopened instead of failing its request).
        redis = (
            Redis.from_pool(
                ConnectionPool.from_url(
                    settings.redis_url,
                    max_connections=REDIS_CONNECTIONS,
                    socket_timeout=None,
                    socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
                    socket_keepalive=True,
                    socket_keepalive_options=REDIS_KEEPALIVE,
                    retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=1), retries=10),
                )
            )
            if settings.redis_url
            else None
        )
        cache: Cache = RedisCache(redis, prefix=settings.redis_prefix) if redis is not None else MemoryCache()
        # Modules on one database share its engine: one pool per process and server (a pool
        # per module multiplied the connections by eight and ran PostgreSQL out of them).
        engines: dict[str, AsyncEngine] = {}
        for spec in modules:
            url = settings.database_url_for(spec.name)
            if url not in engines and not url.startswith("sqlite"):
                engines[url] = engine_for(url, pool_size=settings.db_pool_size, echo=settings.db_echo)
        databases = {
            spec.name: Database(
                spec.name,
                settings.database_url_for(spec.name),
                outbox=spec.outbox,
                pool_size=settings.db_pool_size,
                echo=settings.db_echo,
                engine=engines.get(settings.database_url_for(spec.name)),
            )
            for spec in modules
        }
        bus: EventBus = (
            RabbitBus(settings.broker_url, prefix=settings.broker_prefix) if settings.broker_url else InProcessBus()
        )
        mailer: Mailer = (
            SmtpMailer(settings.smtp_url, settings.mail_from)
            if settings.smtp_url
            else FileMailer(settings.mail_dir, settings.mail_from)
        )
        platform = cls(
            settings=settings,
            modules={spec.name: spec for spec in modules},
            clock=clock,
            cache=cache,
            limiter=RateLimiter(settings.redis_url, prefix=f"{settings.redis_prefix}limits"),
            tokens=TokenService(
                key=settings.jwt_key(),
                algorithm=settings.jwt_algorithm,
                issuer=settings.jwt_issuer,
                ttl_seconds=settings.access_token_ttl_seconds,
                clock=clock,
                cache=cache,
            ),
            passwords=PasswordHasher(
                time_cost=settings.password_hash_time_cost,
                memory_kib=settings.password_hash_memory_kib,
                parallelism=settings.password_hash_parallelism,
                concurrency=settings.password_hash_concurrency,
            ),
            mailer=mailer,
            databases=databases,
            bus=bus,
            relay=OutboxRelay(list(databases.values()), bus, poll_interval=settings.relay_poll_interval),
            redis=redis,
        )
        platform.remotes = Remotes(
            url_of=settings.service_url,
            caller=",".join(platform.modules) or "tienda",
            tokens=platform.tokens,
            clock=clock,
            timeout=settings.service_timeout_seconds,
            policy=RetryPolicy(retries=settings.service_retries, backoff=settings.service_retry_backoff_seconds),
            breaker_failures=settings.service_breaker_failures,
            breaker_cooldown=settings.service_breaker_cooldown_seconds,
        )
        module_jobs = [job for spec in modules for job in (spec.jobs(platform) if spec.jobs else ())]
        platform.jobs = JobRunner([*module_jobs, _pruning(list(databases.values()), clock, settings)])
        for spec in modules:
            for consumer in spec.consumers(platform) if spec.consumers else ():
                sub = Subscription(consumer=consumer, db=databases[consumer.module])
                platform.subscriptions.append(sub)
                if isinstance(bus, InProcessBus):
                    bus.subscribe(sub)
        return platform

    def db(self, module: str) -> Database:
        return self.databases[module]

    def service(self, name: str, build: Callable[[Platform], T]) -> T:
        if name not in self.services:
            self.services[name] = build(self)
        return cast(T, self.services[name])

    def client(
        self, module: str, *, in_process: Callable[[Platform], Local], http: Callable[[Remote], Over]
    ) -> Local | Over:
        """The client of `module` for this process: `in_process` when the module runs here,
        else `http`, calling its service at `TIENDA_<MODULE>_URL`. (Returning either lets the
        caller's annotation check that both implement the module's protocol.)"""
        if module in self.modules:
            return in_process(self)
        assert self.remotes is not None
        return http(self.remotes.get(module))

    def reaches(self, module: str) -> bool:
        """Whether `module` runs in this process or its service's URL is known."""
        return module in self.modules or (self.remotes is not None and self.remotes.configured(module))

    async def migrate(self) -> None:
        if any(db.dialect == "sqlite" for db in self.databases.values()):
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        for name, spec in self.modules.items():
            await upgrade(spec, self.databases[name].url)

    def checks(self) -> dict[str, Check]:
        checks: dict[str, Check] = {f"database:{name}": db.ping for name, db in self.databases.items()}
        if self.redis is not None:
            checks["redis"] = self.cache.ping
        if isinstance(self.bus, RabbitBus):
            checks["broker"] = self.bus.ping
        return checks

    async def start_consumers(self) -> None:
        if isinstance(self.bus, RabbitBus):
            await self.bus.consume(self.subscriptions)

    async def close(self) -> None:
        await self.jobs.stop()
        await self.relay.stop()
        await self.bus.close()
        await self.cache.close()
        if self.remotes is not None:
            await self.remotes.close()
        for db in self.databases.values():
            await db.dispose()


def _pruning(databases: list[Database], clock: Clock, settings: Settings) -> Job:
    """The job that deletes published events past their retention from every outbox of the
    process (`events.prune_published`): a shop writes several events an order, and the
    outbox keeps each one only until it is delivered and a while after, for a reader looking
    into what was sent."""
    retention = timedelta(days=settings.outbox_retention_days)

    async def prune() -> int:
        before = clock.now() - retention
        return sum([await prune_published(db, before=before) for db in databases])

    return Job(name="events.prune_published", interval_seconds=settings.outbox_prune_seconds, run=prune)
