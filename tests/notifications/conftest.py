"""Notification tests run on SQLite by default; what depends on the database itself (claiming
rows for a send under SKIP LOCKED, the retry schedule) runs on PostgreSQL and MariaDB too.
`smtp` is a real SMTP server on loopback; `mail_shop` is the shop sending through it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import SQL_BACKENDS, Shop
from tests.notifications.support import SmtpServer, rebuilt
from tests.ports import free_port

ALL = pytest.mark.parametrize("backend", SQL_BACKENDS, indirect=True)


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """An SMTP server on a free loopback port, not yet started (`smtp.start()`)."""
    server = SmtpServer(port=free_port())
    yield server
    server.stop()


@pytest.fixture
async def mail_shop(shop: Shop, smtp: SmtpServer) -> AsyncIterator[Shop]:
    """The shop on the same database and clock, sending e-mail over SMTP to `smtp`."""
    async with rebuilt(shop, smtp_url=f"smtp://127.0.0.1:{smtp.port}") as mailing:
        yield mailing
