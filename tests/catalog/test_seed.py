"""The demo catalog: deterministic, realistic, visible through the public API."""

from __future__ import annotations

from sqlalchemy import delete, select

from tests.conftest import Shop
from tienda.catalog.models import Product
from tienda.catalog.seed import count_products, seed_catalog


async def _products(shop: Shop) -> list[tuple[str, str, object]]:
    async with shop.platform.db("catalog").reader() as uow:
        rows = await uow.session.execute(
            select(Product.product_id, Product.name, Product.price).order_by(Product.product_id)
        )
        return [(r.product_id, r.name, r.price) for r in rows]


class TestSeed:
    async def test_the_same_seed_makes_the_same_catalog(self, shop: Shop) -> None:
        db = shop.platform.db("catalog")
        assert await seed_catalog(db, products=30, seed=7, now=shop.clock.now(), batch=8) == 30
        first = await _products(shop)
        async with db.uow() as uow:
            await uow.session.execute(delete(Product))
            await uow.commit()

        await seed_catalog(db, products=30, seed=7, now=shop.clock.now(), batch=13)

        assert await _products(shop) == first
        assert len({name for _, name, _ in first}) > 20
        assert await count_products(db) == 30

    async def test_seeded_products_are_published_with_variants_images_and_facets(self, shop: Shop) -> None:
        await seed_catalog(shop.platform.db("catalog"), products=60, seed=1, now=shop.clock.now())

        listing = (await shop.client.get("/api/v1/products", params={"size": 100})).json()
        detail = (await shop.client.get(f"/api/v1/products/{listing['items'][0]['productId']}")).json()

        assert listing["total"] == 60
        assert sum(f["count"] for f in listing["facets"]["brands"]) == 60
        assert sum(f["count"] for f in listing["facets"]["priceRanges"]) == 60
        assert all(item["currency"] == "INR" and item["image"].startswith("https://") for item in listing["items"])
        assert detail["isActive"] is True
        assert detail["images"]
        clothing = (await shop.client.get("/api/v1/products", params={"category": "clothing", "size": 100})).json()
        assert clothing["total"] > 0
        with_variants = [
            (await shop.client.get(f"/api/v1/products/{item['productId']}")).json() for item in clothing["items"][:5]
        ]
        assert all(set(v["attributes"]) == {"color", "size"} for p in with_variants for v in p["variants"])
