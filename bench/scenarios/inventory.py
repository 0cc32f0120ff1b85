"""Inventory: reservations of one hot variant with the database strategy (guarded UPDATE of
one row), compared with PostgreSQL's own hot-row ceiling measured in the same run."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from bench.scenario import BenchModule, LoadContext, Scenario, Target
from tienda.inventory.models import OUTBOX, Reservation, StockItem
from tienda.platform.clock import SystemClock
from tienda.platform.db import Database

PRODUCT, VARIANT = "p_bench_hot", "v_bench_hot"
STOCK = 100_000_000  # never runs out during a run: every request does the full reservation


async def load(ctx: LoadContext) -> None:
    db = Database("inventory", ctx.database_url, outbox=OUTBOX)
    try:
        async with db.uow() as uow:
            await uow.session.execute(
                insert(StockItem),
                [
                    {
                        "product_id": PRODUCT,
                        "variant_id": VARIANT,
                        "stock_count": STOCK,
                        "reserved_count": 0,
                        "threshold": 0,
                        "updated_at": SystemClock().now(),
                    }
                ],
            )
            await uow.commit()
    finally:
        await db.dispose()


async def no_oversell(target: Target) -> list[str]:
    """Units held = units the reservations say; stock untouched; available never below zero.
    Read in one statement (one snapshot): a reservation that commits between two separate
    reads would look like a discrepancy."""
    held = (
        select(func.coalesce(func.sum(Reservation.quantity), 0))
        .where(Reservation.product_id == PRODUCT, Reservation.status == "RESERVED")
        .scalar_subquery()
    )
    db = Database("inventory", target.database_url, outbox=OUTBOX)
    try:
        async with db.reader() as uow:
            row = (
                await uow.session.execute(
                    select(StockItem.stock_count, StockItem.reserved_count, held).where(
                        StockItem.product_id == PRODUCT, StockItem.variant_id == VARIANT
                    )
                )
            ).first()
    finally:
        await db.dispose()
    if row is None:
        return ["the hot variant is gone"]
    stock, reserved, reservations = int(row[0]), int(row[1]), int(row[2])
    problems = []
    if reserved != reservations:
        problems.append(f"reserved_count {reserved} != reservations {reservations}")
    if stock != STOCK or reserved > stock:
        problems.append(f"stock {stock}, reserved {reserved}")
    return problems


MODULE = BenchModule(
    name="inventory",
    load=load,
    scenarios=(
        Scenario(
            name="reserve_hot_db",
            description="POST /api/v1/inventory/reserve of one unit of one hot variant, a new order each "
            "request (database strategy: guarded UPDATE, reservation row, audit row, outbox event in one "
            "transaction); checked afterwards: held units = reservations.",
            concurrencies=(32,),
            lua="reserve.lua",
            rows=lambda target: [(target.admin_token, PRODUCT, VARIANT)],
            ceiling="pg_hot_row",
            check=no_oversell,
        ),
    ),
)
