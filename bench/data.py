"""The bench's own PostgreSQL database and its deterministic data set.

Users are inserted in bulk with one password hash made once by the shop's own hasher at
the production cost: registering 10,000 users through argon2 would take ten minutes and
measure nothing the login scenario does not already measure.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, make_url, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from tienda.catalog.models import Product
from tienda.platform.auth import PasswordHasher, Role, TokenService
from tienda.platform.cache import MemoryCache
from tienda.platform.clock import SystemClock
from tienda.settings import Settings
from tienda.users.models import User

DATABASE = "tienda_bench"
PASSWORD = "bench-Passw0rd!"
SEED = 6
CREATED_AT = datetime(2026, 1, 1, tzinfo=UTC)
_ID_ALPHABET = "0123456789abcdefghijkmnopqrstuvwxyz"  # as tienda.platform.ids


@dataclass(frozen=True)
class BenchUser:
    user_id: str
    email: str


def make_users(count: int, seed: int = SEED) -> list[BenchUser]:
    """The same `count` users for the same seed, run after run."""
    rng = random.Random(seed)
    return [
        BenchUser(user_id="u_" + "".join(rng.choices(_ID_ALPHABET, k=12)), email=f"shopper{i:06d}@bench.example.com")
        for i in range(count)
    ]


def database_url(server_url: str, name: str = DATABASE) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def recreate_database(admin_url: str, name: str = DATABASE) -> None:
    """Drops and creates `name` on the server of `admin_url` (an existing database there)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


async def analyze(url: str) -> None:
    """Planner statistics for the data as it now is, as autovacuum keeps them on a production
    server (it is off on some servers, this machine's among them). Run after the bulk load:
    without statistics PostgreSQL guessed, and scanned the whole stock table for a cart's five
    products. And after each scenario's warm-up: the tables a scenario fills (reservations,
    orders, payments, notifications, outboxes) start the run empty, and a statement that a
    connection runs often gets a generic plan made for the table as it was then, kept for the
    connection's life. Made for an empty table, the reservation's check of which orders hold
    one already was a hash anti-join over a sequential scan of every reservation, run for
    every batch while the table grew to 100,000 rows: PostgreSQL spent ~1 ms of CPU a
    reservation instead of ~0.1. An ANALYZE invalidates such plans; production's tables are
    not empty when a sale starts."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def production_hash(settings: Settings, password: str = PASSWORD) -> str:
    """`password` hashed by the shop's own hasher with the settings' cost."""
    hasher = PasswordHasher(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        parallelism=settings.password_hash_parallelism,
    )
    return await hasher.hash(password)


async def load_users(url: str, users: Sequence[BenchUser], password_hash: str, *, batch: int = 5000) -> None:
    """Bulk-inserts the users (role USER, all sharing `password_hash`) into a migrated database."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for start in range(0, len(users), batch):
                chunk = users[start : start + batch]
                await conn.execute(
                    insert(User),
                    [
                        {
                            "user_id": u.user_id,
                            "email": u.email,
                            "password_hash": password_hash,
                            "full_name": f"Bench Shopper {start + n}",
                            "role": Role.USER.value,
                            "is_active": True,
                            "created_at": CREATED_AT,
                            "updated_at": CREATED_AT,
                        }
                        for n, u in enumerate(chunk)
                    ],
                )
    finally:
        await engine.dispose()


class TokenMinter:
    """Access tokens as the shop's login issues them (same key, issuer, lifetime), minted
    here so that thousands of users get one without thousands of argon2 verifications."""

    def __init__(self, settings: Settings) -> None:
        self._tokens = TokenService(
            key=settings.jwt_key(),
            algorithm=settings.jwt_algorithm,
            issuer=settings.jwt_issuer,
            ttl_seconds=settings.access_token_ttl_seconds,
            clock=SystemClock(),
            cache=MemoryCache(),
        )

    def __call__(self, user_id: str) -> str:
        return self._tokens.issue(user_id, Role.USER).token

    def admin(self) -> str:
        return self._tokens.issue("u_benchadmin", Role.ADMIN).token


async def sample_products(url: str, count: int = 2000) -> list[str]:
    """Published product ids spread over the catalog, in a fixed order."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            ids = list(
                await conn.scalars(select(Product.product_id).where(Product.is_active.is_(True)).order_by(Product.id))
            )
    finally:
        await engine.dispose()
    step = max(1, len(ids) // count)
    return ids[::step][:count]


def write_rows(path: Path, rows: Iterable[Sequence[str]]) -> Path:
    """Tab-separated rows, the format bench/lua/lib.lua reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for row in rows:
            if any("\t" in field or "\n" in field for field in row):
                raise ValueError(f"a field holds a tab or newline: {row!r}")
            out.write("\t".join(row) + "\n")
    return path
