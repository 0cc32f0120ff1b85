"""The demo catalog: deterministic, realistic, visible through the public API."""

from __future__ import annotations

from sqlalchemy import delete, select, text

from tests.conftest import Shop
from tienda.catalog.models import Product
from tienda.catalog.seed import MAX_DEMO_UNITS, StockItem, count_products, seed_catalog
from tienda.inventory.seed import seed_stock


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


class TestSeededStock:
    """As `tienda seed` does it: the catalog's seed draws the units and keeps them in its copy,
    inventory's seed stocks the same."""

    async def _seed(self, shop: Shop, *, products: int, seed: int) -> list[StockItem]:
        handed: list[StockItem] = []

        async def stock(items: list[StockItem]) -> None:
            handed.extend(items)
            await seed_stock(shop.platform.db("inventory"), items, now=shop.clock.now())

        await seed_catalog(
            shop.platform.db("catalog"), products=products, seed=seed, now=shop.clock.now(), batch=16, stock=stock
        )
        return handed

    async def test_inventory_and_the_catalog_agree_on_every_item(self, shop: Shop) -> None:
        items = await self._seed(shop, products=40, seed=3)

        listing = (await shop.client.get("/api/v1/products", params={"size": 100})).json()
        assert listing["total"] == 40
        compared = 0
        for item in listing["items"]:
            product = (await shop.client.get(f"/api/v1/products/{item['productId']}")).json()
            stock = (await shop.client.get(f"/api/v1/inventory/{item['productId']}")).json()
            available = {v["variantId"]: v["available"] for v in stock["variants"]}
            if product["variants"]:
                assert available == {v["variantId"]: v["stock"] for v in product["variants"]}
            else:
                assert available == {None: product["stock"]}
            assert stock["available"] == product["stock"]
            compared += len(available)
        assert compared == len(items)
        units = [n for _, _, n in items]
        assert 0 in units, "some items are out of stock in the demo"
        assert sum(n > 0 for n in units) > len(units) // 2
        assert max(units) <= MAX_DEMO_UNITS

    async def test_the_same_seed_stocks_the_same_and_keeps_the_same_catalog(self, shop: Shop) -> None:
        db = shop.platform.db("catalog")
        await seed_catalog(db, products=30, seed=7, now=shop.clock.now())
        without_stock = await _products(shop)
        async with db.uow() as uow:
            await uow.session.execute(delete(Product))
            await uow.commit()

        first = await self._seed(shop, products=30, seed=7)

        assert await _products(shop) == without_stock
        async with shop.platform.db("inventory").engine.begin() as conn:
            await conn.execute(text("DELETE FROM inventory"))
        async with db.uow() as uow:
            await uow.session.execute(delete(Product))
            await uow.commit()
        assert await self._seed(shop, products=30, seed=7) == first
