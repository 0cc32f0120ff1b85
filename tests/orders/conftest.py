"""Order tests run on SQLite by default: what they check is the orders module's behaviour,
not the database's. What depends on the database itself (row locks, unique keys and the order
number under concurrent checkouts, the saga's queries) runs on PostgreSQL and MariaDB too:
test_concurrency.py, test_saga.py and the coupon CRUD parametrise `backend` with ALL."""

from __future__ import annotations

import pytest

from tests.conftest import SQL_BACKENDS

ALL = pytest.mark.parametrize("backend", SQL_BACKENDS, indirect=True)


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
