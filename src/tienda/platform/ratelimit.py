"""Rate limits on the `limits` library: moving windows in memory or in Redis.

A limit is a string such as "5/15minutes"; identifiers name what is limited
(an account, a client IP). `check` raises `RateLimited` with the seconds until a slot frees.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from tienda.platform.errors import RateLimited


class RateLimiter:
    def __init__(self, redis_url: str | None = None, *, prefix: str = "tienda:limits") -> None:
        self.storage: Storage
        if redis_url:
            self.storage = RedisStorage(f"async+{redis_url}", implementation="redispy", key_prefix=prefix)
        else:
            self.storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._parsed: dict[str, RateLimitItem] = {}

    def _item(self, limit: str) -> RateLimitItem:
        item = self._parsed.get(limit)
        if item is None:
            item = self._parsed[limit] = parse(limit)
        return item

    async def retry_after(self, limit: str, *identifiers: str) -> int | None:
        """Seconds to wait if the limit is exhausted, else None. Takes no slot."""
        item = self._item(limit)
        if await self._limiter.test(item, *identifiers):
            return None
        stats = await self._limiter.get_window_stats(item, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def check(self, limit: str, *identifiers: str, message: str | None = None) -> None:
        wait = await self.retry_after(limit, *identifiers)
        if wait is not None:
            raise RateLimited(wait, message)

    async def hit(self, limit: str, *identifiers: str) -> bool:
        """Take a slot; False when the limit was already exhausted."""
        return await self._limiter.hit(self._item(limit), *identifiers)

    async def consume(self, limit: str, *identifiers: str, message: str | None = None) -> None:
        """Take a slot or raise `RateLimited`."""
        if not await self.hit(limit, *identifiers):
            wait = await self.retry_after(limit, *identifiers)
            raise RateLimited(wait or 1, message)

    async def clear(self, limit: str, *identifiers: str) -> None:
        await self._limiter.clear(self._item(limit), *identifiers)

    async def ping(self) -> None:
        if not await self.storage.check():
            raise ConnectionError("rate-limit storage unreachable")

    async def reset(self) -> None:
        await self.storage.reset()
