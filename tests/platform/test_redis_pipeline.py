"""Redis commands asked for together go as one pipeline (`platform.redis_pipeline`), on the real
Redis of `TIENDA_TEST_REDIS_URL`: each caller gets its own reply or its own error."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tests import backends
from tienda.platform.redis_pipeline import AutoPipeline, auto_pipeline


@pytest.fixture
async def client(redis_prefix: str) -> AsyncIterator[Redis]:
    async with backends.reachable_redis(redis_prefix) as client:
        yield client


async def test_commands_asked_together_share_one_connection_and_keep_their_order(
    client: Redis, redis_prefix: str
) -> None:
    pipeline = AutoPipeline(client)
    key = f"{redis_prefix}counter"

    replies = await asyncio.gather(*(pipeline.execute("INCR", key) for _ in range(50)))

    assert replies == list(range(1, 51))  # each caller its own reply, in the order asked
    # One connection carried all fifty (each command alone takes a connection of its own).
    assert len(client.connection_pool._available_connections) == 1  # type: ignore[attr-defined]
    assert await client.get(key) == b"50"


async def test_a_command_that_fails_fails_only_its_caller(client: Redis, redis_prefix: str) -> None:
    pipeline = AutoPipeline(client)
    text, hash_ = f"{redis_prefix}text", f"{redis_prefix}hash"
    await client.set(text, "a")
    await client.hset(hash_, "f", "v")

    outcomes = await asyncio.gather(
        pipeline.execute("APPEND", text, "b"),
        pipeline.execute("INCR", hash_),  # WRONGTYPE
        pipeline.execute("HGETALL", hash_),
        return_exceptions=True,
    )

    assert outcomes[0] == 2
    assert isinstance(outcomes[1], ResponseError)
    assert "WRONGTYPE" in str(outcomes[1])
    assert outcomes[2] == {b"f": b"v"}  # parsed as redis-py parses HGETALL
    assert await client.get(text) == b"ab"


async def test_a_script_redis_does_not_know_is_loaded_and_run(client: Redis, redis_prefix: str) -> None:
    # A script no one has loaded yet (its text, so its SHA, is new): EVALSHA fails with NOSCRIPT.
    script = client.register_script(f"-- {uuid.uuid4().hex}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await client.script_exists(script.sha) == [False]
    pipeline = AutoPipeline(client)
    key = f"{redis_prefix}scripted"

    first = await asyncio.gather(*(pipeline.run_script(script, keys=[key], args=[2]) for _ in range(5)))
    again = await pipeline.run_script(script, keys=[key], args=[2])

    assert sorted(first) == [2, 4, 6, 8, 10]  # each ran once, none lost or doubled
    assert again == 12
    assert await client.script_exists(script.sha) == [True]


async def test_a_caller_cancelled_mid_flight_leaves_the_others_and_the_connection_working(
    client: Redis, redis_prefix: str
) -> None:
    pipeline = AutoPipeline(client)
    key = f"{redis_prefix}cancelled"
    callers = [asyncio.ensure_future(pipeline.execute("INCR", key)) for _ in range(10)]
    pool = client.connection_pool
    for _ in range(100):  # until the batch is out on its connection
        if pool._in_use_connections:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0)
    assert pool._in_use_connections  # type: ignore[attr-defined]
    callers[3].cancel()

    outcomes = await asyncio.gather(*callers, return_exceptions=True)

    assert isinstance(outcomes[3], asyncio.CancelledError)
    assert [o for i, o in enumerate(outcomes) if i != 3] == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert await client.get(key) == b"10"  # the cancelled caller's command ran all the same
    assert await pipeline.execute("INCR", key) == 11


async def test_a_client_has_one_pipeline(client: Redis) -> None:
    other = Redis.from_url(backends.url_of("redis"))
    try:
        assert auto_pipeline(client) is auto_pipeline(client)
        assert auto_pipeline(other) is not auto_pipeline(client)
    finally:
        await other.aclose()
