"""Carts: set a line (POST /api/v1/carts/items) and read the cart, as signed-in users, on the
production store (Redis). Every line is priced from the catalog and checked against stock."""

from __future__ import annotations

import asyncio

from sqlalchemy import delete, func, insert, select, update

from bench.data import sample_products
from bench.scenario import BenchModule, LoadContext, Scenario, Target
from bench.scenarios.catalog import read_each_product
from tienda.catalog.models import Product, Variant
from tienda.inventory.models import OUTBOX, StockItem
from tienda.platform.clock import SystemClock
from tienda.platform.db import Database

LINES_PER_USER = 5
"""Each user's requests cycle over this many products, so a cart stays a realistic size."""
STOCK = 1_000_000


async def _first_variants(database_url: str, product_ids: list[str]) -> dict[str, str]:
    db = Database("catalog", database_url, outbox=OUTBOX)
    try:
        async with db.reader() as uow:
            rows = await uow.session.execute(
                select(Product.product_id, func.min(Variant.variant_id))
                .join(Variant, Variant.product_id == Product.id)
                .where(Product.product_id.in_(product_ids))
                .group_by(Product.product_id)
            )
            return {str(p): str(v) for p, v in rows}
    finally:
        await db.dispose()


async def load(ctx: LoadContext) -> None:
    """Plenty of stock for the first variant of every sampled product, so no request is refused."""
    products = await _first_variants(ctx.database_url, await sample_products(ctx.database_url))
    db = Database("inventory", ctx.database_url, outbox=OUTBOX)
    try:
        async with db.uow() as uow:
            for product_id, variant_id in products.items():
                await uow.session.execute(
                    delete(StockItem).where(StockItem.product_id == product_id, StockItem.variant_id == variant_id)
                )
            now = SystemClock().now()
            await uow.session.execute(
                insert(StockItem),
                [
                    {
                        "product_id": p,
                        "variant_id": v,
                        "stock_count": STOCK,
                        "reserved_count": 0,
                        "threshold": 0,
                        "updated_at": now,
                    }
                    for p, v in products.items()
                ],
            )
            await uow.commit()
    finally:
        await db.dispose()
    await _catalog_copy(ctx.database_url, products)


async def _catalog_copy(database_url: str, products: dict[str, str]) -> None:
    """The catalog's copy of the stock says the same (as inventory's events would have made it):
    else the first sale of each item looks like its coming back into stock, and search rewrites
    its index for every product during the measured run."""
    db = Database("catalog", database_url, outbox=OUTBOX)
    try:
        async with db.uow() as uow:
            await uow.session.execute(
                update(Variant)
                .where(Variant.variant_id.in_(list(products.values())))
                .values(stock_available=STOCK, stock_updated_at=SystemClock().now())
            )
            await uow.commit()
    finally:
        await db.dispose()


def _lines(target: Target) -> list[tuple[str, str, str]]:
    variants = asyncio.run(_first_variants(target.database_url, list(target.products)))
    products = [p for p in target.products if p in variants]
    rows = []
    for index, user in enumerate(target.sample()):
        token = target.token_for(user.user_id)
        for k in range(LINES_PER_USER):
            product = products[(index * LINES_PER_USER + k) % len(products)]
            rows.append((token, product, variants[product]))
    return rows


def _users(target: Target) -> list[tuple[str]]:
    return [(target.token_for(u.user_id),) for u in target.sample()]


MODULE = BenchModule(
    name="carts",
    load=load,
    scenarios=(
        Scenario(
            name="set_cart_line",
            description="POST /api/v1/carts/items as 2,000 signed-in users, each over 5 products (quantity 1..3): "
            "JWT check, cart read, catalog prices (product cache) and stock (one SELECT), one Lua script on the "
            "Redis cart hash, the priced cart back. Each product page is read once before the warm-up.",
            concurrencies=(32,),
            lua="set_cart.lua",
            rows=_lines,
            prime=read_each_product,
        ),
        Scenario(
            name="get_cart",
            description="GET /api/v1/carts of the same users (carts of up to 5 lines filled by set_cart_line): "
            "HGETALL, prices from the product cache, stock in one SELECT.",
            concurrencies=(32,),
            lua="get_cart.lua",
            rows=_users,
            prime=read_each_product,
        ),
    ),
)
