"""Availability in search: each hit says whether the product can be bought, `inStock=true`
keeps only those that can, and both follow inventory through the catalog — rewriting the
index when a product goes out of stock or comes back, not on every unit."""

from __future__ import annotations

from typing import Any

import pytest

from tests.catalog.support import admin, published_product
from tests.conftest import Shop
from tests.inventory.support import adjust, line, post, reserve
from tests.search.test_search import search
from tienda.search.wiring import search_service

SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def shown(page: dict[str, Any]) -> dict[str, bool]:
    """Name → inStock of each hit."""
    return {item["name"]: item["inStock"] for item in page["items"]}


async def two_products(shop: Shop, auth: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A sneaker with one size (stocked 2) and a mug without variants (stocked 1), indexed."""
    sneaker = await published_product(
        shop, auth, name="Aurora Sneaker", sku=None, variants=[{"sku": "AUR-8", "attributes": {"size": "8"}}]
    )
    mug = await published_product(shop, auth, name="Aurora Mug", sku=None, variants=[])
    await adjust(shop, auth, sneaker["productId"], 2, variant_id=sneaker["variants"][0]["variantId"])
    await adjust(shop, auth, mug["productId"], 1)
    await shop.relay()
    return sneaker, mug


@SQLITE
class TestInStock:
    async def test_hits_say_whether_the_product_can_be_bought(self, shop: Shop) -> None:
        auth = await admin(shop)
        await published_product(shop, auth, name="Aurora Lamp", sku=None, variants=[])
        await two_products(shop, auth)

        page = await search(shop, q="aurora")

        assert shown(page) == {"Aurora Sneaker": True, "Aurora Mug": True, "Aurora Lamp": False}
        assert set(shown(await search(shop, q="aurora", inStock="true"))) == {"Aurora Sneaker", "Aurora Mug"}
        assert (await search(shop, q="aurora", inStock="false"))["total"] == 3

    async def test_reserved_until_none_is_left_it_leaves_the_in_stock_results(self, shop: Shop) -> None:
        auth = await admin(shop)
        sneaker, _ = await two_products(shop, auth)
        size = sneaker["variants"][0]["variantId"]

        await reserve(shop, auth, "ord_20261125_0101", line(sneaker["productId"], 1, size))
        await shop.relay()
        assert set(shown(await search(shop, q="aurora", inStock="true"))) == {"Aurora Sneaker", "Aurora Mug"}

        await reserve(shop, auth, "ord_20261125_0102", line(sneaker["productId"], 1, size))
        await shop.relay()
        in_stock = await search(shop, q="aurora", inStock="true")
        assert shown(in_stock) == {"Aurora Mug": True}
        assert in_stock["total"] == 1
        assert in_stock["facets"]["brands"] == [{"value": "BrandX", "count": 1}]
        assert shown(await search(shop, q="aurora")) == {"Aurora Sneaker": False, "Aurora Mug": True}

        await post(shop, auth, "release", {"orderId": "ord_20261125_0102"})
        await shop.relay()
        assert shown(await search(shop, q="aurora", inStock="true")) == {"Aurora Sneaker": True, "Aurora Mug": True}

    async def test_a_unit_more_or_less_does_not_rewrite_the_index(self, shop: Shop) -> None:
        auth = await admin(shop)
        sneaker, mug = await two_products(shop, auth)
        index = search_service(shop.platform).index
        before = index.version()

        await adjust(shop, auth, mug["productId"], 5)
        await reserve(
            shop, auth, "ord_20261125_0103", line(sneaker["productId"], 1, sneaker["variants"][0]["variantId"])
        )
        await shop.relay()

        assert index.version() == before
        assert shown(await search(shop, q="aurora", inStock="true")) == {"Aurora Sneaker": True, "Aurora Mug": True}

    async def test_a_rebuilt_index_has_the_same_availability(self, shop: Shop) -> None:
        auth = await admin(shop)
        sneaker, _ = await two_products(shop, auth)
        await reserve(
            shop, auth, "ord_20261125_0104", line(sneaker["productId"], 2, sneaker["variants"][0]["variantId"])
        )
        await shop.relay()
        assert shown(await search(shop, q="aurora")) == {"Aurora Sneaker": False, "Aurora Mug": True}

        assert await search_service(shop.platform).reindex() == 2

        assert shown(await search(shop, q="aurora")) == {"Aurora Sneaker": False, "Aurora Mug": True}
        assert shown(await search(shop, q="aurora", inStock="true")) == {"Aurora Mug": True}
