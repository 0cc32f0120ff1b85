"""Inventory: reservations of one hot variant with each strategy. The database strategy (a
guarded UPDATE of one row) is compared with PostgreSQL's own hot-row ceiling, the Redis
strategy (a Lua script on a Redis counter, written through to the database) with the same
script run by redis-benchmark; both measured in the same run."""

from __future__ import annotations

import asyncio
import json

from redis.asyncio import Redis
from sqlalchemy import func, insert, select

from bench.scenario import BenchModule, LoadContext, Scenario, Target
from tienda.inventory.counters import Counters
from tienda.inventory.models import OUTBOX, Reservation, StockItem
from tienda.platform.clock import SystemClock
from tienda.platform.db import Database
from tienda.settings import Settings

PRODUCT, VARIANT = "p_bench_hot", "v_bench_hot"
FLASH_PRODUCT, FLASH_VARIANT = "p_bench_flash", "v_bench_flash"
STOCK = 100_000_000  # never runs out during a run: every request does the full reservation


async def load(ctx: LoadContext) -> None:
    db = Database("inventory", ctx.database_url, outbox=OUTBOX)
    now = SystemClock().now()
    try:
        async with db.uow() as uow:
            await uow.session.execute(
                insert(StockItem),
                [
                    {
                        "product_id": product,
                        "variant_id": variant,
                        "stock_count": STOCK,
                        "reserved_count": 0,
                        "threshold": 0,
                        "updated_at": now,
                    }
                    for product, variant in ((PRODUCT, VARIANT), (FLASH_PRODUCT, FLASH_VARIANT))
                ],
            )
            await uow.commit()
    finally:
        await db.dispose()


async def _check(target: Target, product: str, variant: str) -> tuple[list[str], int, int]:
    """Units held = units the reservations say; stock untouched; available never below zero.
    Read in one statement (one snapshot): a reservation that commits between two separate
    reads would look like a discrepancy. Returns the problems, available and the epoch."""
    held = (
        select(func.coalesce(func.sum(Reservation.quantity), 0))
        .where(Reservation.product_id == product, Reservation.status == "RESERVED")
        .scalar_subquery()
    )
    db = Database("inventory", target.database_url, outbox=OUTBOX)
    try:
        async with db.reader() as uow:
            row = (
                await uow.session.execute(
                    select(StockItem.stock_count, StockItem.reserved_count, StockItem.cache_epoch, held).where(
                        StockItem.product_id == product, StockItem.variant_id == variant
                    )
                )
            ).first()
    finally:
        await db.dispose()
    if row is None:
        return ["the hot variant is gone"], 0, 0
    stock, reserved, epoch, reservations = int(row[0]), int(row[1]), int(row[2]), int(row[3])
    problems = []
    if reserved != reservations:
        problems.append(f"reserved_count {reserved} != reservations {reservations}")
    if stock != STOCK or reserved > stock:
        problems.append(f"stock {stock}, reserved {reserved}: oversold {max(0, reserved - stock)}")
    return problems, stock - reserved, epoch


async def no_oversell(target: Target) -> list[str]:
    problems, _, _ = await _check(target, PRODUCT, VARIANT)
    return problems


async def no_oversell_and_redis_agrees(target: Target) -> list[str]:
    """The same, and the Redis counter holds what the database has available, at its epoch,
    once the shop has worked through its backlog: wrk stops with requests still queued in the
    server, whose units are taken in Redis and not yet written (they agree a moment later)."""
    settings = Settings()  # the shop's, as bench.run put them in the environment
    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url)
    counters = Counters(redis, prefix=settings.redis_prefix, ttl_seconds=settings.inventory_redis_ttl_seconds)
    last: tuple[int, int] | None = None
    unchanged = 0
    try:
        for _ in range(120):  # until they agree, or the database has not changed for 2 s; at most 60 s
            problems, available, epoch = await _check(target, FLASH_PRODUCT, FLASH_VARIANT)
            found = await counters.read((FLASH_PRODUCT, FLASH_VARIANT))
            unchanged = unchanged + 1 if (available, epoch) == last else 0
            if found == (available, epoch) or unchanged >= 4:
                break
            last = (available, epoch)
            await asyncio.sleep(0.5)
    finally:
        await redis.aclose()
    if found is None:
        problems.append("no Redis counter after the run")
    elif found != (available, epoch):
        problems.append(f"Redis counter (available, epoch) {found} != database {(available, epoch)}")
    return problems


MODULE = BenchModule(
    name="inventory",
    load=load,
    scenarios=(
        Scenario(
            name="reserve_hot_db",
            description="POST /api/v1/inventory/reserve of one unit of one hot variant, a new order each "
            "request (database strategy: guarded UPDATE, reservation row, audit row, outbox event in one "
            "statement, shared by the reservations a server process makes at the same time); checked "
            "afterwards: held units = reservations.",
            concurrencies=(50, 200),
            lua="reserve.lua",
            rows=lambda target: [(target.admin_token, PRODUCT, VARIANT)],
            ceiling="pg_hot_row",
            check=no_oversell,
        ),
        Scenario(
            name="reserve_hot_redis",
            description="The same on another hot variant with the Redis strategy: the reservation Lua script "
            "takes the unit from the Redis counter, then the same transaction writes it through; checked "
            "afterwards: held units = reservations, and the Redis counter = available in the database.",
            concurrencies=(50, 200),
            lua="reserve.lua",
            rows=lambda target: [(target.admin_token, FLASH_PRODUCT, FLASH_VARIANT)],
            ceiling="redis_reserve",
            check=no_oversell_and_redis_agrees,
        ),
    ),
    env={"TIENDA_INVENTORY_REDIS_ITEMS": json.dumps([f"{FLASH_PRODUCT}/{FLASH_VARIANT}"])},
)
