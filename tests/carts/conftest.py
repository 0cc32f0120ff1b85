"""Every cart test runs against both stores through the same API: the SQL store and the Redis
store (the shop's own data on SQLite). What depends on the SQL database itself (the store's
queries, locking under concurrent writes) runs on PostgreSQL and MariaDB too: those tests
parametrise `cart_backend` with `ALL_STORES` (test_stores.py).

A test that needs other cart settings (a small line limit, a short guest TTL) parametrises
`cart_settings`: `@pytest.mark.parametrize("cart_settings", [{"cart_max_lines": 3}])`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import Shop
from tienda.app import ALL_MODULES, create_app
from tienda.platform.runtime import Platform

STORES = [("sql", "sqlite"), ("redis", "sqlite")]
ALL_STORES = [("sql", "sqlite"), ("sql", "postgres"), ("sql", "mysql"), ("redis", "sqlite")]


@pytest.fixture(params=STORES, ids=[f"{store}-{db}" for store, db in STORES])
def cart_backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    store, db = request.param
    return str(store), str(db)


@pytest.fixture
def cart_store(cart_backend: tuple[str, str]) -> str:
    return cart_backend[0]


@pytest.fixture
def backend(cart_backend: tuple[str, str]) -> str:
    return cart_backend[1]


@pytest.fixture
def cart_settings() -> dict[str, Any]:
    """Settings a test wants on top of the shop's (none by default)."""
    return {}


@pytest.fixture
async def shop(shop: Shop, cart_store: str, cart_settings: dict[str, Any]) -> AsyncIterator[Shop]:
    """The shop of tests/conftest.py on a whole second (so a time stored to the millisecond
    and one stored to the microsecond read back the same), rebuilt with `cart_settings`.

    Asking for `cart_store` here puts it among the test's fixtures, which is how the shop
    of tests/conftest.py (and its Redis) learns which store to use."""
    assert shop.settings.cart_store == cart_store
    assert (shop.settings.redis_url is not None) == (cart_store == "redis")
    shop.clock.advance(microseconds=-shop.clock.now().microsecond)
    if not cart_settings:
        yield shop
        return
    for db in shop.platform.databases.values():  # the first shop's idle connections, while this one runs
        await db.dispose()
    settings = shop.settings.model_copy(update=cart_settings)
    platform = Platform.build(settings, ALL_MODULES, clock=shop.clock)
    app = create_app(settings, platform=platform)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        yield Shop(client=client, platform=platform, clock=shop.clock, data_dir=shop.data_dir, settings=settings)
    await platform.close()
