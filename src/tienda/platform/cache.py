"""A small cache interface with an in-memory and a Redis implementation.

Values are bytes; callers choose the encoding. Redis is used whenever `TIENDA_REDIS_URL`
is set, so several API workers share one cache and invalidations reach all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.asyncio import Redis

from tienda.platform.redis_pipeline import auto_pipeline


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, *keys: str) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes, *, ttl: float) -> None: ...

    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        """Set only if absent; False when the key was there."""
        ...

    async def delete(self, *keys: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryCache:
    """Process-local LRU with per-entry expiry (dev and single-process deployments)."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max = max_entries

    async def get(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    async def get_many(self, *keys: str) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        self._data[key] = (time.monotonic() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl=ttl)
        return True

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()


_Follower = tuple[list[str], "asyncio.Future[list[bytes | None]]"]
"""A read that joined a batch: its keys, and the future its values are set on."""


class RedisCache:
    """The cache on Redis. Reads that requests of one process ask for in the same turn of the
    event loop go to Redis as one MGET (automatic pipelining, as ioredis and go-redis do it):
    one command, one write and one read of a socket for all of them instead of one each,
    which were most of a cached read's CPU time. A read still sees every write that completed
    before it was asked for: the MGET is sent after it was. Every command goes through the
    client's `AutoPipeline`, with the other commands of the process asked for meanwhile."""

    def __init__(self, client: Redis, *, prefix: str = "tienda:") -> None:
        self._redis = client
        self._pipeline = auto_pipeline(client)
        self._prefix = prefix
        self._forming: list[_Follower] | None = None
        self._serving: set[asyncio.Future[None]] = set()

    async def get(self, key: str) -> bytes | None:
        return (await self._read([key]))[0]

    async def get_many(self, *keys: str) -> list[bytes | None]:
        return await self._read(list(keys)) if keys else []

    async def _read(self, keys: list[str]) -> list[bytes | None]:
        if self._forming is not None:  # a batch is forming: join it
            joined: asyncio.Future[list[bytes | None]] = asyncio.get_running_loop().create_future()
            self._forming.append((keys, joined))
            return await joined
        # Lead a batch: let the tasks that are ready run once (those that read join), then send.
        followers: list[_Follower] = []
        self._forming = followers
        try:
            try:
                await asyncio.sleep(0)
            finally:
                self._forming = None
            return await self._mget(keys, followers)
        except asyncio.CancelledError:
            if followers:  # the others did not ask to be cancelled: their reads go on without this one
                task = asyncio.ensure_future(self._serve(followers))
                self._serving.add(task)
                task.add_done_callback(self._serving.discard)
            raise

    async def _mget(self, keys: list[str], followers: list[_Follower]) -> list[bytes | None]:
        """The values of `keys`; each follower's future gets those of its own keys, or the error."""
        try:
            raw = await self._pipeline.execute(
                "MGET", *(self._prefix + k for batch in (keys, *(f[0] for f in followers)) for k in batch)
            )
        except Exception as exc:
            for _, future in followers:
                if not future.done():
                    future.set_exception(exc)
            raise
        values: list[bytes | None] = [v.encode() if isinstance(v, str) else v for v in raw]
        position = len(keys)
        for batch, future in followers:
            if not future.done():
                future.set_result(values[position : position + len(batch)])
            position += len(batch)
        return values[: len(keys)]

    async def _serve(self, followers: list[_Follower]) -> None:
        with contextlib.suppress(Exception):  # each follower has it
            await self._mget([], followers)

    async def set(self, key: str, value: bytes, *, ttl: float) -> None:
        await self._pipeline.execute("SET", self._prefix + key, value, "PX", max(1, int(ttl * 1000)))

    async def add(self, key: str, value: bytes, *, ttl: float) -> bool:
        return bool(await self._pipeline.execute("SET", self._prefix + key, value, "PX", max(1, int(ttl * 1000)), "NX"))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._pipeline.execute("DEL", *(self._prefix + k for k in keys))

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()


class Generation:
    """A namespace of cached entries that one write retires as a whole.

    Entries are keyed by the current generation; a write renews it (after its commit), so
    entries cached before are never read again and simply expire. A reader that rendered
    from data older than the write stores it under the old generation, where nobody looks.
    """

    TTL = 7 * 24 * 3600.0

    def __init__(self, cache: Cache, key: str) -> None:
        self.cache = cache
        self.key = key

    async def current(self) -> bytes:
        value = await self.cache.get(self.key)
        if value is None:
            value = uuid.uuid4().hex.encode()
            if not await self.cache.add(self.key, value, ttl=self.TTL):
                value = await self.cache.get(self.key) or value
        return value

    async def renew(self) -> None:
        await self.cache.set(self.key, uuid.uuid4().hex.encode(), ttl=self.TTL)


def query_key(namespace: str, version: bytes, query: dict[str, Any]) -> str:
    """A cache key for one query under one version of the data it reads."""
    digest = hashlib.sha256(version + json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()
    return f"{namespace}:{digest}"


def raw_query_key(namespace: str, version: bytes, raw_query: bytes) -> str:
    """A cache key for a query string exactly as sent, under one version of the data (what
    `web.CachedQuery` looks up before any parsing)."""
    return f"{namespace}:raw:{hashlib.sha256(version + b'?' + raw_query).hexdigest()}"


class RenderCache:
    """Bodies rendered once and kept for a while: a miss renders and stores; concurrent misses
    of one key in this process share one rendering, so a burst of readers after a change
    does the work once instead of once each."""

    def __init__(self, cache: Cache, *, ttl: float) -> None:
        self.cache = cache
        self.ttl = ttl
        self._rendering: dict[str, asyncio.Future[bytes]] = {}

    async def get(self, key: str, render: Callable[[], Awaitable[bytes]], *, alias: str | None = None) -> bytes:
        """The body kept under `key`, rendered on a miss; kept under `alias` too when given (the
        raw query string's key: the next request asking the same way skips the route)."""
        body = await self.cache.get(key)
        if body is None:
            task = self._rendering.get(key)
            if task is None:
                task = self._rendering[key] = asyncio.ensure_future(self._render_and_keep(key, render))
                task.add_done_callback(lambda _: self._rendering.pop(key, None))
            body = await asyncio.shield(task)
        if alias is not None:
            await self.cache.set(alias, body, ttl=self.ttl)
        return body

    async def _render_and_keep(self, key: str, render: Callable[[], Awaitable[bytes]]) -> bytes:
        body = await render()
        await self.cache.set(key, body, ttl=self.ttl)
        return body
