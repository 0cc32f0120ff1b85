"""Fixtures that build a real shop: real migrations on a real database (SQLite always,
PostgreSQL and MariaDB when configured), the real app over ASGI, real Redis when asked.

Each test starts from empty tables. API tests need real commits (the outbox relay and
concurrent clients read what others committed), so tables are emptied between tests
instead of rolling back a wrapping transaction; see docs/architecture.md.
"""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, text, update

from tests import backends
from tienda.app import ALL_MODULES, create_app
from tienda.platform.clock import FrozenClock
from tienda.platform.runtime import Platform
from tienda.settings import Settings

SQL_BACKENDS = ("sqlite", "postgres", "mysql")


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tienda")


@pytest.fixture(scope="session")
async def database_urls(tmp_root: Path) -> AsyncIterator[dict[str, str]]:
    """One migrated database per SQL backend and test process, created on first use."""
    created: dict[str, tuple[str, str]] = {}
    urls: dict[str, str] = {}

    class Lazy(dict[str, str]):
        async def get_url(self, kind: str) -> str:
            if kind not in urls:
                if kind == "sqlite":
                    urls[kind] = f"sqlite+aiosqlite:///{tmp_root / 'shop.db'}"
                else:
                    url, admin = await backends.create_database(kind)
                    created[kind] = (url, admin)
                    urls[kind] = url
                platform = Platform.build(shop_settings(tmp_root, urls[kind]), ALL_MODULES)
                try:
                    await platform.migrate()
                finally:
                    await platform.close()
            return urls[kind]

    lazy = Lazy()
    yield lazy
    for kind, (url, admin) in created.items():
        await backends.drop_database(kind, url, admin)


def shop_settings(
    data_dir: Path, database_url: str, redis_url: str | None = None, redis_prefix: str = "tienda:", **extra: Any
) -> Settings:
    return Settings(
        env="test",
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        jwt_secret="test-secret-that-is-long-enough-for-hs256",  # type: ignore[arg-type]
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
        password_hash_parallelism=1,
        relay_in_process=False,
        **extra,
    )


async def _empty_tables(platform: Platform) -> None:
    for name, spec in platform.modules.items():
        async with platform.db(name).engine.begin() as conn:
            for table in reversed(spec.metadata.sorted_tables):
                # MySQL checks a self-referencing key row by row (a tree of categories), so cut the links first.
                self_refs = {fk.parent.name: None for fk in table.foreign_keys if fk.column.table is table}
                if self_refs:
                    await conn.execute(update(table).values(self_refs))
                await conn.execute(delete(table))


@pytest.fixture(params=SQL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The SQL backend of the shop. Every storage test runs on each; a test that is about
    something else narrows it with `@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)`."""
    return str(request.param)


@pytest.fixture(params=["memory", "redis"])
def cache_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def redis_url(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[str | None]:
    """A reachable Redis when the test asked for `cache_backend == 'redis'`, else None; the
    test's keys go under `redis_prefix` and are deleted after (`backends.reachable_redis`)."""
    wants = any(
        name in request.fixturenames and request.getfixturevalue(name) == "redis"
        for name in ("cache_backend", "cart_store")
    )
    if not wants:
        yield None
        return
    async with backends.reachable_redis(redis_prefix):
        yield backends.url_of("redis")


@pytest.fixture
def redis_prefix() -> str:
    return f"tienda-test-{uuid.uuid4().hex[:10]}:"


@dataclass
class Shop:
    """A running shop as a test sees it: the HTTP client, the platform behind it, the clock."""

    client: httpx.AsyncClient
    platform: Platform
    clock: FrozenClock
    data_dir: Path
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    async def register(self, email: str = "asha@example.com", password: str = "P@ssw0rd!", **extra: Any) -> str:
        response = await self.client.post(
            "/api/v1/users/register", json={"email": email, "password": password, **extra}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["userId"])

    async def login(self, email: str = "asha@example.com", password: str = "P@ssw0rd!") -> dict[str, Any]:
        response = await self.client.post("/api/v1/users/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def user(
        self, email: str = "asha@example.com", password: str = "P@ssw0rd!", **extra: Any
    ) -> tuple[str, dict[str, str]]:
        """Registers and logs in; returns the user id and the Authorization header."""
        user_id = await self.register(email, password, **extra)
        tokens = await self.login(email, password)
        return user_id, {"Authorization": f"Bearer {tokens['accessToken']}"}

    async def admin(self, email: str = "root@example.com", password: str = "Adm1n-pass") -> tuple[str, dict[str, str]]:
        from tienda.platform.auth import Role
        from tienda.users.wiring import build_user_service

        service = build_user_service(self.platform)
        async with self.platform.db("users").uow() as uow:
            user = await service.register(
                uow, email=email, password=password, full_name="Root", phone=None, role=Role.ADMIN
            )
            await uow.commit()
        tokens = await self.login(email, password)
        return user.user_id, {"Authorization": f"Bearer {tokens['accessToken']}"}

    async def relay(self) -> int:
        """Delivers every committed event, as the background relay would."""
        return await self.platform.relay.drain()

    def mails(self) -> list[EmailMessage]:
        folder = self.settings.mail_dir
        if not folder.exists():
            return []
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for path in sorted(folder.glob("*.eml"))
        ]

    async def events(self, module: str, event_type: str) -> list[dict[str, Any]]:
        """The payloads of a module's outbox events of one type, oldest first, read through the
        real table so JSON decodes the same on every backend."""
        table = self.platform.db(module).outbox.outbox
        async with self.platform.db(module).engine.connect() as conn:
            rows = await conn.execute(select(table.c.payload).where(table.c.type == event_type).order_by(table.c.id))
            return [dict(payload) for payload in rows.scalars()]

    async def scalar(self, module: str, sql: str, **params: Any) -> Any:
        async with self.platform.db(module).engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings a test changes: `@pytest.mark.parametrize("settings_overrides", [{...}], indirect=True)`."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
async def shop(
    request: pytest.FixtureRequest,
    settings_overrides: dict[str, Any],
    backend: str,
    database_urls: Any,
    redis_url: str | None,
    redis_prefix: str,
    tmp_path: Path,
) -> AsyncIterator[Shop]:
    url = await database_urls.get_url(backend)
    extra = {"cart_store": request.getfixturevalue("cart_store")} if "cart_store" in request.fixturenames else {}
    extra |= settings_overrides
    settings = shop_settings(tmp_path, url, redis_url, redis_prefix, **extra)
    clock = FrozenClock()
    platform = Platform.build(settings, ALL_MODULES, clock=clock)
    await _empty_tables(platform)
    app = create_app(settings, platform=platform)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        yield Shop(client=client, platform=platform, clock=clock, data_dir=tmp_path, settings=settings)
    await platform.close()
