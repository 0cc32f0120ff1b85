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

    async def test_concurrent_reads_each_get_their_own_values(self, cache: Cache) -> None:
        """Reads asked for in the same turn of the event loop (on Redis: one MGET) are
        answered each with its own keys' values, whatever mix of single and multiple reads."""
        for n in range(60):
            await cache.set(f"k{n}", f"v{n}".encode(), ttl=60)

        async def one(n: int) -> object:
            if n % 3 == 0:
                return await cache.get_many(f"k{n}", "missing", f"k{(n + 1) % 60}")
            return await cache.get(f"k{n}" if n % 3 == 1 else "missing")

        answers = await asyncio.gather(*(one(n) for n in range(60)))

        for n, answer in enumerate(answers):
            if n % 3 == 0:
                assert answer == [f"v{n}".encode(), None, f"v{(n + 1) % 60}".encode()]
            else:
                assert answer == (f"v{n}".encode() if n % 3 == 1 else None)

    async def test_a_read_sees_a_write_that_completed_before_it(self, cache: Cache) -> None:
        await cache.set("seen", b"old", ttl=60)
        first = asyncio.ensure_future(cache.get("seen"))
        await cache.set("seen", b"new", ttl=60)

        assert await cache.get("seen") == b"new"
        assert await first in (b"old", b"new")


class TestRedisBatchedReads:
    async def test_a_failed_batch_fails_every_read_in_it(self) -> None:
        cache = RedisCache(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1), prefix="x:")
        try:
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(cache.get(f"k{n}") for n in range(10)), return_exceptions=True), timeout=30
            )
        finally:
            await cache.close()

        assert len(outcomes) == 10
        assert all(isinstance(outcome, Exception) for outcome in outcomes)

    @pytest.mark.parametrize("cache_backend", ["redis"], indirect=True)
    async def test_the_others_in_a_batch_are_answered_when_its_first_reader_is_cancelled(
        self, cache_backend: str, redis_url: str | None, redis_prefix: str
    ) -> None:
        cache = RedisCache(Redis.from_url(str(redis_url)), prefix=redis_prefix)
        try:
            await cache.set("b", b"bee", ttl=60)
            leader = asyncio.ensure_future(cache.get("a"))
            followers = [asyncio.ensure_future(cache.get_many("b", "c")) for _ in range(3)]
            await asyncio.sleep(0)  # the leader waits one turn for others; the followers join
            leader.cancel()

            answers = await asyncio.wait_for(asyncio.gather(*followers), timeout=5)

            assert answers == [[b"bee", None]] * 3
            assert leader.cancelled()
            assert await cache.get("b") == b"bee"  # and the cache goes on serving
        finally:
            await cache.close()


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
