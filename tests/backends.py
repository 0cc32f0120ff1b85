"""Real servers for the tests: which are configured, and throwaway databases on them.

Set these to run the integration tests (`.ci/run` sets them for this machine's servers):

- `TIENDA_TEST_POSTGRES_URL`  e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
- `TIENDA_TEST_MYSQL_URL`     e.g. mysql+asyncmy://root@127.0.0.1:3306/mysql
- `TIENDA_TEST_REDIS_URL`     e.g. redis://127.0.0.1:6379/15
- `TIENDA_TEST_AMQP_URL`      e.g. amqp://guest:guest@127.0.0.1:5672/

Unset, those tests skip and say why. With `CI=true` an unset or unreachable server fails
the run instead: on CI no integration test may skip.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

ENV = {
    "postgres": "TIENDA_TEST_POSTGRES_URL",
    "mysql": "TIENDA_TEST_MYSQL_URL",
    "redis": "TIENDA_TEST_REDIS_URL",
    "amqp": "TIENDA_TEST_AMQP_URL",
}

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def url_of(kind: str) -> str:
    """The server's URL, or skip (fail on CI) when it is not configured."""
    url = os.environ.get(ENV[kind])
    if not url:
        message = f"{ENV[kind]} is not set: no {kind} server to test against"
        if ON_CI:
            pytest.fail(message + " (CI must provide every server)", pytrace=False)
        pytest.skip(message)
    return url


def unreachable(kind: str, exc: BaseException) -> None:
    message = f"{kind} at {os.environ.get(ENV[kind])} is unreachable: {exc!r}"
    if ON_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextlib.asynccontextmanager
async def reachable_redis(prefix: str) -> AsyncIterator[Redis]:
    """A client of the test Redis, checked reachable (else skip, or fail on CI). Tests share
    the server (across xdist workers and runs), so each keeps its keys under its own `prefix`,
    deleted after, instead of flushing a database under someone else's feet."""
    client = Redis.from_url(url_of("redis"))
    try:
        await client.ping()
    except (OSError, RedisConnectionError) as exc:  # redis-py wraps the socket's error in its own
        await client.aclose()
        unreachable("redis", exc)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


async def _admin(admin_url: str, statement: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def create_database(kind: str) -> tuple[str, str]:
    """Creates a throwaway database on the server; returns (its URL, the admin URL)."""
    admin_url = url_of(kind)
    name = f"tienda_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    if kind == "postgres":
        statement = f'CREATE DATABASE "{name}"'
    else:
        statement = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    try:
        await _admin(admin_url, statement)
    except OSError as exc:
        unreachable(kind, exc)
    except Exception as exc:
        if "connect" in repr(exc).lower():
            unreachable(kind, exc)
        raise
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), admin_url


async def drop_database(kind: str, url: str, admin_url: str) -> None:
    name = make_url(url).database
    if kind == "postgres":
        await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        await _admin(admin_url, f"DROP DATABASE IF EXISTS `{name}`")
