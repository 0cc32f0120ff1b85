"""The cache and the rate limiter, each on memory and on Redis behind one interface."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tienda.platform.cache import Cache, MemoryCache, RedisCache
from tienda.platform.errors import RateLimited
from tienda.platform.ratelimit import RateLimiter


@pytest.fixture
async def cache(cache_backend: str, redis_url: str | None, redis_prefix: str) -> AsyncIterator[Cache]:
    store: Cache = (
        MemoryCache() if cache_backend == "memory" else RedisCache(Redis.from_url(str(redis_url)), prefix=redis_prefix)
    )
    yield store
    await store.close()


@pytest.fixture
def limiter(cache_backend: str, redis_url: str | None, redis_prefix: str) -> RateLimiter:
    return RateLimiter(redis_url if cache_backend == "redis" else None, prefix=f"{redis_prefix}limits")


class TestCache:
    async def test_stores_reads_and_deletes(self, cache: Cache) -> None:
        await cache.set("product:p_1", b'{"name":"Tee"}', ttl=60)
        await cache.set("product:p_2", b"two", ttl=60)

        assert await cache.get("product:p_1") == b'{"name":"Tee"}'
        await cache.delete("product:p_1", "product:missing")
        assert await cache.get("product:p_1") is None
        assert await cache.get("product:p_2") == b"two"

    async def test_entries_expire(self, cache: Cache) -> None:
        await cache.set("short", b"x", ttl=0.05)
        assert await cache.get("short") == b"x"

        await asyncio.sleep(0.15)

        assert await cache.get("short") is None

    async def test_reads_many_at_once(self, cache: Cache) -> None:
        await cache.set("a", b"1", ttl=60)
        await cache.set("c", b"3", ttl=60)

        assert await cache.get_many("a", "b", "c") == [b"1", None, b"3"]

    async def test_ping(self, cache: Cache) -> None:
        await cache.ping()


class TestMemoryCacheBound:
    async def test_evicts_the_least_recently_used_entry(self) -> None:
        cache = MemoryCache(max_entries=2)
        await cache.set("a", b"1", ttl=60)
        await cache.set("b", b"2", ttl=60)
        await cache.get("a")
        await cache.set("c", b"3", ttl=60)

        assert await cache.get("b") is None
        assert await cache.get("a") == b"1"
        assert await cache.get("c") == b"3"


class TestRateLimiter:
    async def test_allows_the_limit_then_refuses_with_a_wait(self, limiter: RateLimiter) -> None:
        for _ in range(3):
            await limiter.consume("3/minute", "login", "asha@example.com")

        with pytest.raises(RateLimited) as refused:
            await limiter.consume("3/minute", "login", "asha@example.com")

        assert 1 <= refused.value.retry_after <= 60
        assert refused.value.headers["Retry-After"] == str(refused.value.retry_after)
        assert refused.value.status == 429

    async def test_identifiers_are_counted_apart(self, limiter: RateLimiter) -> None:
        await limiter.consume("1/minute", "login", "a@example.com")

        await limiter.consume("1/minute", "login", "b@example.com")
        assert await limiter.retry_after("1/minute", "login", "a@example.com") is not None

    async def test_checking_takes_no_slot_and_clearing_resets(self, limiter: RateLimiter) -> None:
        await limiter.check("2/minute", "x", "1")
        await limiter.check("2/minute", "x", "1")
        assert await limiter.hit("2/minute", "x", "1")
        assert await limiter.hit("2/minute", "x", "1")
        assert not await limiter.hit("2/minute", "x", "1")

        await limiter.clear("2/minute", "x", "1")

        await limiter.check("2/minute", "x", "1")
        await limiter.ping()
