"""Product detail is cached (memory or Redis) and never stale after the write that changed it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tests.conftest import Shop
from tests.users.support import assert_error
from tienda.catalog.service import CatalogService
from tienda.catalog.wiring import catalog_service
from tienda.platform.cache import MemoryCache


@pytest.fixture
def backend() -> str:
    """Caching is about the cache store; one database is enough."""
    return "sqlite"


async def _published(shop: Shop, admin: dict[str, str]) -> str:
    created = await shop.client.post(
        "/api/v1/products", json={"name": "Mug", "price": 250, "brand": "Ghar"}, headers=admin
    )
    product_id = str(created.json()["productId"])
    assert (await shop.client.post(f"/api/v1/products/{product_id}/publish", headers=admin)).status_code == 200
    return product_id


class TestProductCache:
    async def test_a_public_read_is_served_from_the_cache(self, shop: Shop, cache_backend: str) -> None:
        _, admin = await shop.admin()
        product_id = await _published(shop, admin)
        first = await shop.client.get(f"/api/products/{product_id}")
        # Changed behind the shop's back: only the cache can still answer the old name.
        async with shop.platform.db("catalog").engine.begin() as conn:
            await conn.execute(
                text("UPDATE products SET name = 'Changed in SQL' WHERE product_id = :p"), {"p": product_id}
            )

        second = await shop.client.get(f"/api/products/{product_id}")

        assert first.json()["name"] == second.json()["name"] == "Mug"
        assert await shop.platform.cache.get(f"catalog:product:{product_id}") == second.content

    async def test_an_update_shows_at_once(self, shop: Shop, cache_backend: str) -> None:
        _, admin = await shop.admin()
        product_id = await _published(shop, admin)
        await shop.client.get(f"/api/products/{product_id}")

        await shop.client.put(f"/api/v1/products/{product_id}", json={"price": 199.5}, headers=admin)

        assert (await shop.client.get(f"/api/products/{product_id}")).json()["price"] == 199.5

    @pytest.mark.parametrize("write", ["unpublish", "delete", "hard delete"])
    async def test_hiding_a_product_shows_at_once(self, shop: Shop, cache_backend: str, write: str) -> None:
        _, admin = await shop.admin()
        product_id = await _published(shop, admin)
        await shop.client.get(f"/api/products/{product_id}")

        if write == "unpublish":
            await shop.client.post(f"/api/v1/products/{product_id}/unpublish", headers=admin)
        else:
            await shop.client.delete(
                f"/api/v1/products/{product_id}", params={"hard": write == "hard delete"}, headers=admin
            )

        assert_error(await shop.client.get(f"/api/products/{product_id}"), 404, "PRODUCT_NOT_FOUND")

    async def test_a_reader_that_loaded_the_old_product_cannot_put_it_back(
        self, shop: Shop, cache_backend: str
    ) -> None:
        _, admin = await shop.admin()
        product_id = await _published(shop, admin)
        stale = (await shop.client.get(f"/api/products/{product_id}")).content
        await shop.client.post(f"/api/v1/products/{product_id}/unpublish", headers=admin)

        # A slow reader finishing after the write: readers only add, so it loses.
        added = await shop.platform.cache.add(f"catalog:product:{product_id}", stale, ttl=60)

        assert added is False
        assert_error(await shop.client.get(f"/api/products/{product_id}"), 404, "PRODUCT_NOT_FOUND")

    async def test_republishing_shows_the_product_again(self, shop: Shop, cache_backend: str) -> None:
        _, admin = await shop.admin()
        product_id = await _published(shop, admin)
        await shop.client.post(f"/api/v1/products/{product_id}/unpublish", headers=admin)
        assert (await shop.client.get(f"/api/products/{product_id}")).status_code == 404

        await shop.client.post(f"/api/v1/products/{product_id}/publish", headers=admin)

        assert (await shop.client.get(f"/api/products/{product_id}")).json()["name"] == "Mug"

    async def test_an_added_image_shows_at_once(self, shop: Shop, cache_backend: str) -> None:
        _, admin = await shop.admin()
        product_id = await _published(shop, admin)
        await shop.client.get(f"/api/products/{product_id}")

        await shop.client.post(
            f"/api/v1/products/{product_id}/images", json={"url": "https://cdn.example.com/m.jpg"}, headers=admin
        )

        assert (await shop.client.get(f"/api/products/{product_id}")).json()["images"] == [
            "https://cdn.example.com/m.jpg"
        ]


class TestListingCache:
    async def test_a_listing_page_is_served_from_the_cache(self, shop: Shop, cache_backend: str) -> None:
        _, admin = await shop.admin()
        product_id = await _published(shop, admin)
        first = await shop.client.get("/api/products")
        async with shop.platform.db("catalog").engine.begin() as conn:
            await conn.execute(
                text("UPDATE products SET name = 'Changed in SQL' WHERE product_id = :p"), {"p": product_id}
            )

        second = await shop.client.get("/api/products")

        assert first.json()["items"][0]["name"] == second.json()["items"][0]["name"] == "Mug"

    @pytest.mark.parametrize("write", ["price", "unpublish", "publish another"])
    async def test_a_write_shows_in_the_listing_at_once(self, shop: Shop, cache_backend: str, write: str) -> None:
        _, admin = await shop.admin()
        product_id = await _published(shop, admin)
        other = (await shop.client.post("/api/v1/products", json={"name": "Cup", "price": 90}, headers=admin)).json()[
            "productId"
        ]
        # Twice: the second is answered before routing, by its query string as sent.
        await shop.client.get("/api/products", params={"sort": "name_asc"})
        await shop.client.get("/api/products", params={"sort": "name_asc"})

        if write == "price":
            await shop.client.put(f"/api/v1/products/{product_id}", json={"price": 99}, headers=admin)
            expected = [("Mug", 99.0)]
        elif write == "unpublish":
            await shop.client.post(f"/api/v1/products/{product_id}/unpublish", headers=admin)
            expected = []
        else:
            await shop.client.post(f"/api/v1/products/{other}/publish", headers=admin)
            expected = [("Cup", 90.0), ("Mug", 250.0)]

        body = (await shop.client.get("/api/products", params={"sort": "name_asc"})).json()
        assert [(i["name"], i["price"]) for i in body["items"]] == expected

    async def test_renaming_a_category_shows_in_the_facets_at_once(self, shop: Shop, cache_backend: str) -> None:
        _, admin = await shop.admin()
        category = (await shop.client.post("/api/v1/categories", json={"name": "Kitchen"}, headers=admin)).json()[
            "categoryId"
        ]
        created = await shop.client.post(
            "/api/v1/products", json={"name": "Pan", "price": 700, "categoryId": category}, headers=admin
        )
        await shop.client.post(f"/api/v1/products/{created.json()['productId']}/publish", headers=admin)
        await shop.client.get("/api/products")

        await shop.client.patch(f"/api/v1/categories/{category}", json={"name": "Cookware"}, headers=admin)

        facets = (await shop.client.get("/api/products")).json()["facets"]["categories"]
        assert facets == [{"categoryId": category, "name": "Cookware", "count": 1}]


class TestListingStampede:
    async def test_concurrent_misses_of_one_page_render_it_once(self, shop: Shop) -> None:
        service = CatalogService(clock=shop.clock, cache=MemoryCache())
        renders = 0
        release = asyncio.Event()

        async def render() -> bytes:
            nonlocal renders
            renders += 1
            await release.wait()
            return b'{"items":[]}'

        waiting = [
            asyncio.ensure_future(service.cached_listing(query={"page": 1}, raw_query=b"page=1", render=render))
            for _ in range(20)
        ]
        await asyncio.sleep(0.01)
        release.set()
        bodies = await asyncio.gather(*waiting)

        assert renders == 1
        assert bodies == [b'{"items":[]}'] * 20
        assert await service.cached_listing(query={"page": 1}, raw_query=b"page=1", render=render) == b'{"items":[]}'
        assert renders == 1

    async def test_a_failed_rendering_is_not_kept(self, shop: Shop) -> None:
        service = CatalogService(clock=shop.clock, cache=MemoryCache())

        async def broken() -> bytes:
            raise RuntimeError("database away")

        async def working() -> bytes:
            return b"ok"

        with pytest.raises(RuntimeError):
            await service.cached_listing(query={"page": 2}, raw_query=b"page=2", render=broken)
        assert await service.cached_listing(query={"page": 2}, raw_query=b"page=2", render=working) == b"ok"


class TestCachedReadsBeforeRouting:
    """A public read whose JSON is in the cache is answered before routing; the answer must be
    the route's own in every respect a client or an operator sees."""

    async def test_the_answer_the_headers_and_the_metrics_are_the_routes(self, shop: Shop, cache_backend: str) -> None:
        _, admin = await shop.admin()
        product_id = await _published(shop, admin)
        routed = await shop.client.get(f"/api/v1/products/{product_id}")  # a miss: the route fills the cache
        assert await shop.platform.cache.get(f"catalog:product:{product_id}") == routed.content

        cached = await shop.client.get(f"/api/v1/products/{product_id}", headers={"X-Request-ID": "trace-1"})
        aliased = await shop.client.get(f"/api/products/{product_id}")

        assert cached.status_code == aliased.status_code == 200
        assert cached.content == aliased.content == routed.content
        assert cached.headers["content-type"] == routed.headers["content-type"] == "application/json"
        assert cached.headers["content-length"] == str(len(routed.content))
        assert cached.headers["x-request-id"] == "trace-1"
        metrics = (await shop.client.get("/metrics")).text
        assert 'route="/api/v1/products/{productId}",status="200"} 2.0' in metrics
        assert 'route="/api/products/{productId}",status="200"} 1.0' in metrics

    async def test_a_hidden_product_is_the_routes_404(self, shop: Shop, cache_backend: str) -> None:
        _, admin = await shop.admin()
        product_id = await _published(shop, admin)
        await shop.client.get(f"/api/v1/products/{product_id}")
        await shop.client.post(f"/api/v1/products/{product_id}/unpublish", headers=admin)
        assert await shop.platform.cache.get(f"catalog:product:{product_id}") == b"-"

        response = await shop.client.get(f"/api/v1/products/{product_id}")

        assert_error(response, 404, "PRODUCT_NOT_FOUND")

    async def test_a_signed_in_reader_goes_to_the_route(self, shop: Shop, cache_backend: str) -> None:
        _, admin = await shop.admin()
        product_id = await _published(shop, admin)
        await shop.client.get(f"/api/v1/products/{product_id}")
        await shop.platform.cache.set(f"catalog:product:{product_id}", b'{"stale":true}', ttl=60)

        as_admin = await shop.client.get(f"/api/v1/products/{product_id}", headers=admin)
        with_bad_token = await shop.client.get(
            f"/api/v1/products/{product_id}", headers={"Authorization": "Bearer not-a-token"}
        )
        public = await shop.client.get(f"/api/v1/products/{product_id}")

        assert as_admin.json()["name"] == "Mug"  # admins read the database
        assert with_bad_token.status_code == 401  # credentials are checked, not skipped
        assert public.json() == {"stale": True}  # the public reads what the cache holds

    async def test_a_query_string_or_another_method_goes_to_the_route(self, shop: Shop, cache_backend: str) -> None:
        _, admin = await shop.admin()
        product_id = await _published(shop, admin)
        await shop.platform.cache.set(f"catalog:product:{product_id}", b'{"from":"cache"}', ttl=60)

        assert (await shop.client.get(f"/api/v1/products/{product_id}", params={"x": "1"})).json() == {
            "from": "cache"
        }  # the route reads the same cache
        assert (await shop.client.delete(f"/api/v1/products/{product_id}")).status_code == 401
        assert (await shop.client.get("/api/v1/products/search", params={"q": "mug"})).status_code == 200

    async def test_a_listing_asked_the_same_way_again_is_answered_before_routing(
        self, shop: Shop, cache_backend: str
    ) -> None:
        _, admin = await shop.admin()
        await _published(shop, admin)
        routed = await shop.client.get("/api/v1/products?sort=name_asc&size=5")
        alias = await catalog_service(shop.platform).listing_alias(b"sort=name_asc&size=5")
        assert await shop.platform.cache.get(alias) == routed.content
        await shop.platform.cache.set(alias, b'{"from":"alias"}', ttl=60)

        same = await shop.client.get("/api/products?sort=name_asc&size=5", headers={"X-Request-ID": "trace-2"})
        reordered = await shop.client.get("/api/v1/products?size=5&sort=name_asc")
        signed_in = await shop.client.get("/api/v1/products?sort=name_asc&size=5", headers=admin)

        assert (same.json(), same.headers["x-request-id"]) == ({"from": "alias"}, "trace-2")
        assert same.headers["content-type"] == "application/json"
        assert reordered.content == signed_in.content == routed.content  # the route's own answer
        metrics = (await shop.client.get("/metrics")).text
        assert 'route="/api/products",status="200"} 1.0' in metrics

    async def test_a_bad_query_is_never_kept_and_always_gets_the_routes_400(
        self, shop: Shop, cache_backend: str
    ) -> None:
        for _ in range(2):
            assert_error(await shop.client.get("/api/v1/products?page=0"), 400, "VALIDATION_FAILED")
        alias = await catalog_service(shop.platform).listing_alias(b"page=0")
        assert await shop.platform.cache.get(alias) is None
