"""The catalog: product detail from the cache and from the database, and the listing page."""

from __future__ import annotations

from bench.flows import read_each
from bench.scenario import BenchModule, LoadContext, Scenario, Target
from tienda.catalog.models import OUTBOX
from tienda.catalog.seed import seed_catalog
from tienda.platform.clock import SystemClock
from tienda.platform.db import Database

SEED = 11


async def load(ctx: LoadContext) -> None:
    db = Database("catalog", ctx.database_url, outbox=OUTBOX)
    try:
        await seed_catalog(db, products=ctx.products, seed=SEED, now=SystemClock().now(), batch=5000)
    finally:
        await db.dispose()


def _products(target: Target) -> list[tuple[str]]:
    return [(p,) for p in target.products]


async def read_each_product(target: Target) -> None:
    """Every product page once, as buyers see a product before they buy it: the product cache
    then holds what the measured run reads."""
    await read_each(target.base_url, [f"/api/v1/products/{p}" for p in target.products])


def _admin_products(target: Target) -> list[tuple[str, str]]:
    return [(p, target.admin_token) for p in target.products]


LISTINGS = (
    "size=20",
    "size=20&sort=price_asc",
    "size=20&category=clothing",
    "size=20&category=electronics&sort=price_desc",
    "size=20&brand=Voltra",
    "size=20&minPrice=500&maxPrice=2000&sort=name_asc",
)


MODULE = BenchModule(
    name="catalog",
    load=load,
    scenarios=(
        Scenario(
            name="product_cached",
            description="GET /api/v1/products/{id} as the public sees it, over 2,000 products: "
            "served from the Redis cache (each one is read once before the warm-up).",
            concurrencies=(32,),
            lua="product.lua",
            rows=_products,
            prime=read_each_product,
        ),
        Scenario(
            name="product_uncached",
            description="The same read as an admin, which bypasses the cache: three indexed SELECTs "
            "(product, variants, images) and the category lookup.",
            concurrencies=(32,),
            lua="product.lua",
            rows=_admin_products,
        ),
        Scenario(
            name="listing",
            description="GET /api/v1/products page 1 (20 items) with brand, category and price-range "
            "facets, rotating six filter/sort combinations over the whole catalog.",
            concurrencies=(32,),
            lua="get.lua",
            rows=lambda target: [(f"/api/v1/products?{query}",) for query in LISTINGS],
        ),
    ),
)
