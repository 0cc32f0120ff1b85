"""Every cart test runs against both stores through the same API: the SQL store on each SQL
database, and the Redis store (the shop's own data on SQLite)."""

from __future__ import annotations

import pytest

STORES = [("sql", "sqlite"), ("sql", "postgres"), ("sql", "mysql"), ("redis", "sqlite")]


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
