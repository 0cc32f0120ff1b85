"""Search as a shopper and an admin see it: products appear once published, follow every edit,
disappear when hidden; filters, sorts, facets, suggestions, bad input, the cache, reindexing."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

from tests.catalog.support import IMG1, IMG2, IMG3, admin, new_category, new_product, published_product
from tests.conftest import Shop
from tienda.platform.events import Event
from tienda.search.wiring import search_service

# The index lives on the file system whatever the SQL backend; the rebuild, which reads the
# catalog's tables, runs on each.
SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

SEARCH = "/api/v1/products/search"


async def search(shop: Shop, **params: Any) -> dict[str, Any]:
    response = await shop.client.get(SEARCH, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


async def shoe(shop: Shop, auth: dict[str, str], **changes: Any) -> dict[str, Any]:
    """A published product, relayed into the index."""
    body = {
        "name": "Trailblazer Running Shoes",
        "sku": None,
        "description": "Breathable mesh with a cushioned sole.",
        "price": 2499,
        "brand": "Stride",
        "variants": [],
        "images": [IMG1],
    } | changes
    product = await published_product(shop, auth, **body)
    await shop.relay()
    return product


@SQLITE
class TestAProductsLifeInSearch:
    async def test_the_issue_walkthrough(self, shop: Shop) -> None:
        auth = await admin(shop)
        category = await new_category(shop, auth, "Sneakers")
        created = await new_product(
            shop,
            auth,
            name="Aurora Trail Sneakers",
            sku="AURORA",
            description="Lightweight sneakers for long runs",
            price=3499,
            brand="Aurora",
            categoryId=category["categoryId"],
            variants=[
                {"sku": "AURORA-8", "attributes": {"color": "teal", "size": "8"}},
                {"sku": "AURORA-9", "attributes": {"color": "teal", "size": "9"}, "price": 3599},
            ],
            images=[IMG1, IMG2, IMG3],
        )
        product_id = created["productId"]
        await shop.relay()
        assert (await search(shop, q="aurora"))["total"] == 0, "unpublished products are not searchable"

        auth_publish = await shop.client.post(f"/api/v1/products/{product_id}/publish", headers=auth)
        assert auth_publish.status_code == 200
        await shop.relay()
        found = await search(shop, q="aurora sneakers")
        assert [i["productId"] for i in found["items"]] == [product_id]
        hit = found["items"][0]
        assert hit == {
            "productId": product_id,
            "name": "Aurora Trail Sneakers",
            "price": 3499.0,
            "currency": "INR",
            "brand": "Aurora",
            "categoryId": category["categoryId"],
            "image": IMG1,
            "createdAt": created["createdAt"],
            "inStock": False,  # inventory has none of it yet
        }
        assert found["facets"]["brands"] == [{"value": "Aurora", "count": 1}]
        assert found["facets"]["categories"] == [{"categoryId": category["categoryId"], "name": "Sneakers", "count": 1}]
        assert {"name": "color", "values": [{"value": "teal", "count": 1}]} in found["facets"]["attributes"]
        # One letter wrong, or missing, still finds it.
        assert names(await search(shop, q="aurorra")) == ["Aurora Trail Sneakers"]
        assert names(await search(shop, q="sneakrs")) == ["Aurora Trail Sneakers"]
        listing = (await shop.client.get("/api/v1/products", params={"brand": "Aurora"})).json()
        assert [i["productId"] for i in listing["items"]] == [product_id]

        changed = await shop.client.put(f"/api/v1/products/{product_id}", json={"price": 2999}, headers=auth)
        assert changed.status_code == 200
        assert (await shop.client.get(f"/api/v1/products/{product_id}")).json()["price"] == 2999.0
        await shop.relay()
        assert (await search(shop, q="aurora"))["items"][0]["price"] == 2999.0

        hidden = await shop.client.post(f"/api/v1/products/{product_id}/unpublish", headers=auth)
        assert hidden.status_code == 200
        await shop.relay()
        assert (await search(shop, q="aurora"))["total"] == 0
        assert (await shop.client.get("/api/v1/products/suggest", params={"q": "auro"})).json()["products"] == []

    @pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
    async def test_a_deleted_product_leaves_search(self, shop: Shop, hard: bool) -> None:
        auth = await admin(shop)
        product = await shoe(shop, auth)
        assert (await search(shop, q="trailblazer"))["total"] == 1

        response = await shop.client.delete(
            f"/api/v1/products/{product['productId']}", params={"hard": str(hard).lower()}, headers=auth
        )
        assert response.status_code == 204
        await shop.relay()

        assert (await search(shop, q="trailblazer"))["total"] == 0
        assert (await search(shop))["total"] == 0

    async def test_an_edit_is_searchable_within_a_second_with_the_relay_running(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await shoe(shop, auth)
        shop.platform.relay.start()
        try:
            started = time.monotonic()
            response = await shop.client.put(
                f"/api/v1/products/{product['productId']}", json={"name": "Skyline Running Shoes"}, headers=auth
            )
            assert response.status_code == 200
            while names(await search(shop, q="skyline")) != ["Skyline Running Shoes"]:
                assert time.monotonic() - started < 1.0, "the edit was not searchable within a second"
                await asyncio.sleep(0.02)
        finally:
            await shop.platform.relay.stop()
        assert (await search(shop, q="trailblazer"))["total"] == 0

    async def test_an_older_change_arriving_late_does_not_undo_a_newer_one(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await shoe(shop, auth)
        shop.clock.advance(seconds=5)
        response = await shop.client.put(f"/api/v1/products/{product['productId']}", json={"price": 1999}, headers=auth)
        assert response.status_code == 200
        await shop.relay()
        assert (await search(shop, q="trailblazer"))["items"][0]["price"] == 1999.0
        published = (await shop.events("catalog", "product.published"))[-1]

        # The publish event again, as a redelivery under another id would bring it: older than the index.
        late = Event(
            id="00000000-0000-0000-0000-000000000001",
            type="product.published",
            source="catalog",
            occurred_at=shop.clock.now() - timedelta(minutes=1),
            payload=published,
        )
        await shop.platform.bus.publish(late)

        assert (await search(shop, q="trailblazer"))["items"][0]["price"] == 1999.0

    async def test_a_redelivered_event_changes_nothing(self, shop: Shop) -> None:
        auth = await admin(shop)
        await shoe(shop, auth)
        before = await search(shop, q="trailblazer")
        table = shop.platform.db("catalog").outbox.outbox
        async with shop.platform.db("catalog").engine.begin() as conn:
            await conn.execute(table.update().values(published_at=None))
        assert await shop.relay() > 0

        assert await search(shop, q="trailblazer") == before


@SQLITE
class TestMatching:
    async def test_stemming_prefixes_and_typos(self, shop: Shop) -> None:
        auth = await admin(shop)
        await shoe(shop, auth)
        await shoe(shop, auth, name="Harbour Linen Shirt", brand="Khadi Co", description="Relaxed linen shirt")
        await shoe(shop, auth, name="Pixel Lamp", brand="Ghar", description="A warm desk lamp")

        assert names(await search(shop, q="shoe")) == ["Trailblazer Running Shoes"]  # stemmed
        assert names(await search(shop, q="run")) == ["Trailblazer Running Shoes"]  # running → run
        assert names(await search(shop, q="trailbl")) == ["Trailblazer Running Shoes"]  # last word as a prefix
        assert names(await search(shop, q="shirts")) == ["Harbour Linen Shirt"]
        assert names(await search(shop, q="harbuor")) == ["Harbour Linen Shirt"]  # one swap, 7 letters
        assert (await search(shop, q="lmap "))["total"] == 0  # a 4-letter word gets no typo allowance
        assert (await search(shop, q="xylophone"))["total"] == 0

    async def test_a_word_in_the_name_outranks_the_same_word_in_a_description(self, shop: Shop) -> None:
        auth = await admin(shop)
        await shoe(shop, auth, name="Everyday Canvas Tote", brand="Nest", description="Pairs well with a linen shirt")
        await shoe(shop, auth, name="Classic Linen Shirt", brand="Khadi Co", description="Cool and light")

        assert names(await search(shop, q="linen shirt")) == ["Classic Linen Shirt", "Everyday Canvas Tote"]

    async def test_all_words_are_required_unless_no_product_has_them_all(self, shop: Shop) -> None:
        auth = await admin(shop)
        await shoe(shop, auth)
        await shoe(shop, auth, name="Trailblazer Socks", brand="Stride", description="Wool socks")

        assert names(await search(shop, q="trailblazer socks")) == ["Trailblazer Socks"]
        assert sorted(names(await search(shop, q="socks xylophone shoes"))) == [
            "Trailblazer Running Shoes",
            "Trailblazer Socks",
        ]


@SQLITE
class TestFiltersSortsAndFacets:
    @pytest.fixture
    async def catalog(self, shop: Shop) -> dict[str, Any]:
        auth = await admin(shop)
        footwear = await new_category(shop, auth, "Footwear")
        sneakers = await new_category(shop, auth, "Sneakers", parentId=footwear["categoryId"])
        clothing = await new_category(shop, auth, "Clothing")
        made = {}
        for name, brand, price, category, colors in [
            ("Cloud Runner Sneakers", "Stride", 2999, sneakers, ["black", "white"]),
            ("Court Classic Sneakers", "Paduka", 1499, sneakers, ["white"]),
            ("Monsoon Boots", "Stride", 5999, footwear, ["brown"]),
            ("Cotton Tee", "Urban Loom", 399, clothing, ["black"]),
        ]:
            shop.clock.advance(seconds=1)
            made[name] = await shoe(
                shop,
                auth,
                name=name,
                brand=brand,
                price=price,
                categoryId=category["categoryId"],
                variants=[{"attributes": {"color": c, "size": "M"}} for c in colors],
            )
        return {"footwear": footwear, "sneakers": sneakers, "clothing": clothing, "products": made, "auth": auth}

    async def test_a_category_includes_its_sub_categories_by_id_or_slug(
        self, shop: Shop, catalog: dict[str, Any]
    ) -> None:
        by_id = await search(shop, category=catalog["footwear"]["categoryId"], sort="price_asc")
        assert names(by_id) == ["Court Classic Sneakers", "Cloud Runner Sneakers", "Monsoon Boots"]
        assert names(await search(shop, category="sneakers", sort="price_asc")) == [
            "Court Classic Sneakers",
            "Cloud Runner Sneakers",
        ]

    async def test_brand_price_and_attribute_filters_combine(self, shop: Shop, catalog: dict[str, Any]) -> None:
        assert sorted(names(await search(shop, brand="Stride"))) == ["Cloud Runner Sneakers", "Monsoon Boots"]
        assert sorted(names(await search(shop, brand=["Stride", "Paduka"], maxPrice=3000))) == [
            "Cloud Runner Sneakers",
            "Court Classic Sneakers",
        ]
        assert names(await search(shop, minPrice=1499, maxPrice=1499)) == ["Court Classic Sneakers"]
        assert sorted(names(await search(shop, **{"attr.color": "black"}))) == ["Cloud Runner Sneakers", "Cotton Tee"]
        either = await shop.client.get(SEARCH, params=[("attr.color", "brown"), ("attr.color", "WHITE")])
        assert sorted(names(either.json())) == ["Cloud Runner Sneakers", "Court Classic Sneakers", "Monsoon Boots"]
        assert names(await search(shop, q="sneakers", **{"attr.color": "black", "attr.size": "m"})) == [
            "Cloud Runner Sneakers"
        ]

    async def test_the_seeds_filters_parameter_says_the_same(self, shop: Shop, catalog: dict[str, Any]) -> None:
        assert sorted(names(await search(shop, filters="brand:Stride,maxPrice:3000"))) == ["Cloud Runner Sneakers"]
        assert names(await search(shop, filters="category:sneakers,color:white,minPrice:2000")) == [
            "Cloud Runner Sneakers"
        ]
        # An explicit parameter wins over the same key in `filters`.
        assert names(await search(shop, filters="maxPrice:500", maxPrice=1500, q="sneakers")) == [
            "Court Classic Sneakers"
        ]

    async def test_sorts(self, shop: Shop, catalog: dict[str, Any]) -> None:
        def prices(page: dict[str, Any]) -> list[float]:
            return [i["price"] for i in page["items"]]

        assert prices(await search(shop, sort="price_asc")) == [399.0, 1499.0, 2999.0, 5999.0]
        assert prices(await search(shop, sort="price_desc")) == [5999.0, 2999.0, 1499.0, 399.0]
        assert names(await search(shop, sort="newest")) == [
            "Cotton Tee",
            "Monsoon Boots",
            "Court Classic Sneakers",
            "Cloud Runner Sneakers",
        ]
        assert names(await search(shop)) == names(await search(shop, sort="newest"))  # no words: newest first

    async def test_pages(self, shop: Shop, catalog: dict[str, Any]) -> None:
        first = await search(shop, sort="price_asc", size=3)
        second = await search(shop, sort="price_asc", size=3, page=2)
        assert (first["page"], first["size"], first["total"]) == (1, 3, 4)
        assert names(first) + names(second) == names(await search(shop, sort="price_asc"))
        assert (await search(shop, page=3, size=3))["items"] == []

    async def test_facets_count_every_hit(self, shop: Shop, catalog: dict[str, Any]) -> None:
        facets = (await search(shop, q="sneakers", size=1))["facets"]
        assert sorted((b["value"], b["count"]) for b in facets["brands"]) == [("Paduka", 1), ("Stride", 1)]
        assert facets["categories"] == [
            {"categoryId": catalog["sneakers"]["categoryId"], "name": "Sneakers", "count": 2}
        ]
        assert [(r["min"], r["max"], r["count"]) for r in facets["priceRanges"]] == [
            (0.0, 500.0, 0),
            (500.0, 1000.0, 0),
            (1000.0, 2500.0, 1),
            (2500.0, 5000.0, 1),
            (5000.0, None, 0),
        ]
        assert facets["attributes"] == [
            {"name": "color", "values": [{"value": "white", "count": 2}, {"value": "black", "count": 1}]},
            {"name": "size", "values": [{"value": "m", "count": 2}]},
        ]

    async def test_a_renamed_category_is_named_anew_in_facets(self, shop: Shop, catalog: dict[str, Any]) -> None:
        auth = catalog["auth"]
        sneakers = catalog["sneakers"]["categoryId"]
        renamed = await shop.client.patch(f"/api/v1/categories/{sneakers}", json={"name": "Trainers"}, headers=auth)
        assert renamed.status_code == 200

        facets = (await search(shop, q="sneakers"))["facets"]
        assert facets["categories"] == [{"categoryId": sneakers, "name": "Trainers", "count": 2}]


@SQLITE
class TestSuggestions:
    async def test_completions_and_products_as_the_shopper_types(self, shop: Shop) -> None:
        auth = await admin(shop)
        await shoe(shop, auth)
        await shoe(shop, auth, name="Trail Runner Socks", brand="Stride", description="Wool")

        response = await shop.client.get("/api/v1/products/suggest", params={"q": "trai"})
        assert response.status_code == 200
        body = response.json()
        assert body["query"] == "trai"
        assert body["completions"][:2] == ["trail", "trailblazer"]
        assert sorted(p["name"] for p in body["products"]) == ["Trail Runner Socks", "Trailblazer Running Shoes"]

        narrowed = (await shop.client.get("/api/v1/products/suggest", params={"q": "trail runner so"})).json()
        assert [p["name"] for p in narrowed["products"]] == ["Trail Runner Socks"]
        assert narrowed["completions"] == ["socks"]

    async def test_nothing_typed_suggests_nothing(self, shop: Shop) -> None:
        body = (await shop.client.get("/api/v1/products/suggest", params={"q": "  "})).json()
        assert body == {"query": "  ", "completions": [], "products": []}


@SQLITE
class TestBadInput:
    @pytest.mark.parametrize(
        "params",
        [
            {"sort": "cheapest"},
            {"page": 0},
            {"size": 1000},
            {"minPrice": -1},
            {"minPrice": "abc"},
            {"minPrice": 10, "maxPrice": 5},
            {"filters": "brand"},
            {"filters": "minPrice:cheap"},
            {"attr.": "red"},
            {"attr.color": " "},
            {"brand": "x" * 256},
        ],
        ids=lambda p: ",".join(f"{k}={str(v)[:12]}" for k, v in p.items()),
    )
    async def test_is_refused_in_the_envelope(self, shop: Shop, params: dict[str, Any]) -> None:
        response = await shop.client.get(SEARCH, params=params)

        assert response.status_code == 400, response.text
        body = response.json()
        assert body["code"] == "VALIDATION_FAILED"
        assert body["path"] == SEARCH

    async def test_an_unknown_category_is_refused(self, shop: Shop) -> None:
        response = await shop.client.get(SEARCH, params={"category": "no-such-thing"})
        assert response.status_code == 400
        assert response.json()["code"] == "UNKNOWN_CATEGORY"

    @pytest.mark.parametrize(
        "q",
        ['"', '"unbalanced', "title:shoe", "AND", "OR NOT", "(", "shoe~2", "*", "😀👟", "\\", "a" * 10_000, "é" * 300],
        ids=[
            "quote",
            "open-quote",
            "field",
            "and",
            "or-not",
            "paren",
            "tilde",
            "star",
            "emoji",
            "backslash",
            "10k",
            "accents",
        ],
    )
    async def test_any_text_is_a_query(self, shop: Shop, q: str) -> None:
        auth = await admin(shop)
        await shoe(shop, auth)
        response = await shop.client.get(SEARCH, params={"q": q})
        assert response.status_code == 200, response.text
        suggest = await shop.client.get("/api/v1/products/suggest", params={"q": q})
        assert suggest.status_code == 200, suggest.text


@SQLITE
@pytest.mark.parametrize("cache_backend", ["memory", "redis"], indirect=True)
class TestCache:
    async def test_a_repeated_search_is_answered_from_the_cache_until_the_index_changes(
        self, shop: Shop, cache_backend: str
    ) -> None:
        auth = await admin(shop)
        await shoe(shop, auth)
        service = search_service(shop.platform)
        first = await search(shop, q="shoes")
        version = service.index.version()

        # The index still says the same; the cache answers without searching it.
        searched = 0
        original = service.index.search

        def counting(request: Any) -> Any:
            nonlocal searched
            searched += 1
            return original(request)

        service.index.search = counting  # type: ignore[method-assign]
        try:
            assert await search(shop, q="shoes") == first
            assert searched == 0
            # ... and kept by its query string as sent, which is answered before routing.
            assert await shop.platform.cache.get(await service.results_alias(b"q=shoes")) is not None
            await shoe(shop, auth, name="Cloud Running Shoes")
            assert service.index.version() != version
            assert sorted(names(await search(shop, q="shoes"))) == ["Cloud Running Shoes", "Trailblazer Running Shoes"]
            assert searched == 1
        finally:
            del service.index.search


class TestReindex:
    async def test_rebuilds_published_products_from_the_catalog(self, shop: Shop) -> None:
        auth = await admin(shop)
        await shoe(shop, auth)
        draft = await new_product(shop, auth, name="Draft Running Shoes", sku=None, variants=[])
        gone = await shoe(shop, auth, name="Retired Running Shoes")
        await shop.client.delete(f"/api/v1/products/{gone['productId']}", headers=auth)
        # Events not yet relayed: the rebuild reads the catalog itself.
        service = search_service(shop.platform)
        before = service.index.generations()

        indexed = await service.reindex(batch_size=2)

        assert indexed == 1
        assert names(await search(shop, q="running shoes")) == ["Trailblazer Running Shoes"]
        assert draft["productId"] not in str(await search(shop, q="draft"))
        assert service.index.generations()[-1] > before[-1]
        await shop.relay()  # the late events change nothing the rebuild did not already know
        assert names(await search(shop, q="running shoes")) == ["Trailblazer Running Shoes"]


@SQLITE
class TestChangesDuringARebuild:
    async def test_searches_go_on_and_no_event_is_lost_while_the_index_is_locked(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await shoe(shop, auth)
        service = search_service(shop.platform)
        await shop.client.put(f"/api/v1/products/{product['productId']}", json={"price": 999}, headers=auth)

        lock = await asyncio.to_thread(service.index.lock().acquire)  # as a long rebuild holds it
        try:
            relaying = asyncio.ensure_future(shop.relay())
            await asyncio.sleep(0.2)
            assert not relaying.done(), "the event waits for the lock"
            assert (await search(shop, q="trailblazer"))["items"][0]["price"] == 2499.0  # reads go on
        finally:
            lock.release()
        await relaying

        assert (await search(shop, q="trailblazer"))["items"][0]["price"] == 999.0

    async def test_a_change_during_a_rebuild_is_in_the_new_index(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await shoe(shop, auth)
        service = search_service(shop.platform)
        lock = await asyncio.to_thread(service.index.lock().acquire)
        rebuilding = asyncio.ensure_future(service.reindex())
        await shop.client.put(f"/api/v1/products/{product['productId']}", json={"price": 777}, headers=auth)
        relaying = asyncio.ensure_future(shop.relay())
        await asyncio.sleep(0.1)
        lock.release()
        await asyncio.gather(rebuilding, relaying)

        assert (await search(shop, q="trailblazer"))["items"][0]["price"] == 777.0
