"""The public product listing: filters, sorts, pages and facets over published products."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Shop
from tests.users.support import assert_error


async def _category(shop: Shop, admin: dict[str, str], name: str, parent: str | None = None) -> str:
    response = await shop.client.post("/api/v1/categories", json={"name": name, "parentId": parent}, headers=admin)
    assert response.status_code == 201, response.text
    return str(response.json()["categoryId"])


async def _product(
    shop: Shop,
    admin: dict[str, str],
    name: str,
    price: float,
    *,
    brand: str,
    category: str,
    publish: bool = True,
    **extra: Any,
) -> str:
    body = {"name": name, "price": price, "brand": brand, "categoryId": category, **extra}
    response = await shop.client.post("/api/v1/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    product_id = str(response.json()["productId"])
    if publish:
        assert (await shop.client.post(f"/api/v1/products/{product_id}/publish", headers=admin)).status_code == 200
    return product_id


@pytest.fixture
async def catalog(shop: Shop) -> dict[str, str]:
    """Clothing > Tees, Clothing > Shoes, Books; six products, one unpublished and one deleted."""
    _, admin = await shop.admin()
    clothing = await _category(shop, admin, "Clothing")
    tees = await _category(shop, admin, "Tees", clothing)
    shoes = await _category(shop, admin, "Shoes", clothing)
    books = await _category(shop, admin, "Books")
    ids = {
        "tee": await _product(
            shop, admin, "Basic Tee", 499, brand="Acme", category=tees, images=["https://cdn.example.com/tee.jpg"]
        ),
        "polo": await _product(shop, admin, "Polo Shirt", 1299.5, brand="Zed", category=tees),
        "runner": await _product(shop, admin, "Runner", 4999, brand="Acme", category=shoes),
        "novel": await _product(shop, admin, "A Novel", 350, brand="Pages", category=books),
        "draft": await _product(shop, admin, "Draft Tee", 100, brand="Acme", category=tees, publish=False),
        "gone": await _product(shop, admin, "Gone Tee", 200, brand="Acme", category=tees),
    }
    assert (await shop.client.delete(f"/api/v1/products/{ids['gone']}", headers=admin)).status_code == 204
    return {"clothing": clothing, "tees": tees, "shoes": shoes, "books": books, **ids}


def _ids(body: dict[str, Any]) -> list[str]:
    return [item["productId"] for item in body["items"]]


class TestListing:
    async def test_lists_only_published_products(self, shop: Shop, catalog: dict[str, str]) -> None:
        response = await shop.client.get("/api/products")

        assert response.status_code == 200
        body = response.json()
        assert body["total"] == 4
        assert set(_ids(body)) == {catalog["tee"], catalog["polo"], catalog["runner"], catalog["novel"]}
        assert (body["page"], body["size"]) == (1, 20)
        tee = next(i for i in body["items"] if i["productId"] == catalog["tee"])
        assert tee == {
            "productId": catalog["tee"],
            "name": "Basic Tee",
            "price": 499.0,
            "currency": "INR",
            "brand": "Acme",
            "categoryId": catalog["tees"],
            "image": "https://cdn.example.com/tee.jpg",
            "createdAt": tee["createdAt"],
        }

    @pytest.mark.parametrize(
        ("sort", "order"),
        [
            ("price_asc", ["novel", "tee", "polo", "runner"]),
            ("price_desc", ["runner", "polo", "tee", "novel"]),
            ("name_asc", ["novel", "tee", "polo", "runner"]),
        ],
    )
    async def test_sorts(self, shop: Shop, catalog: dict[str, str], sort: str, order: list[str]) -> None:
        response = await shop.client.get("/api/v1/products", params={"sort": sort})

        assert _ids(response.json()) == [catalog[name] for name in order]

    async def test_a_category_includes_its_sub_categories_by_id_or_slug(
        self, shop: Shop, catalog: dict[str, str]
    ) -> None:
        by_id = (
            await shop.client.get("/api/v1/products", params={"category": catalog["clothing"], "sort": "price_asc"})
        ).json()
        by_slug = (
            await shop.client.get("/api/v1/products", params={"category": "clothing", "sort": "price_asc"})
        ).json()

        assert _ids(by_id) == _ids(by_slug) == [catalog["tee"], catalog["polo"], catalog["runner"]]

    async def test_brand_and_price_filters_combine(self, shop: Shop, catalog: dict[str, str]) -> None:
        response = await shop.client.get(
            "/api/v1/products", params={"brand": "Acme", "minPrice": "400", "maxPrice": "499"}
        )

        assert _ids(response.json()) == [catalog["tee"]]

    async def test_pages(self, shop: Shop, catalog: dict[str, str]) -> None:
        first = (await shop.client.get("/api/v1/products", params={"sort": "price_asc", "size": 3})).json()
        second = (await shop.client.get("/api/v1/products", params={"sort": "price_asc", "size": 3, "page": 2})).json()

        assert _ids(first) == [catalog["novel"], catalog["tee"], catalog["polo"]]
        assert _ids(second) == [catalog["runner"]]
        assert first["total"] == second["total"] == 4

    async def test_facets_count_the_whole_filtered_result(self, shop: Shop, catalog: dict[str, str]) -> None:
        body = (await shop.client.get("/api/v1/products", params={"category": "clothing", "size": 1})).json()

        assert body["facets"]["brands"] == [{"value": "Acme", "count": 2}, {"value": "Zed", "count": 1}]
        assert body["facets"]["categories"] == [
            {"categoryId": catalog["tees"], "name": "Tees", "count": 2},
            {"categoryId": catalog["shoes"], "name": "Shoes", "count": 1},
        ]
        assert body["facets"]["priceRanges"] == [
            {"min": 0.0, "max": 500.0, "count": 1},
            {"min": 500.0, "max": 1000.0, "count": 0},
            {"min": 1000.0, "max": 2500.0, "count": 1},
            {"min": 2500.0, "max": 5000.0, "count": 1},
            {"min": 5000.0, "max": None, "count": 0},
        ]

    async def test_a_changed_price_shows_at_once(self, shop: Shop, catalog: dict[str, str]) -> None:
        _, admin = await shop.admin("other-admin@example.com")
        await shop.client.put(f"/api/v1/products/{catalog['tee']}", json={"price": 5500}, headers=admin)

        body = (await shop.client.get("/api/v1/products", params={"sort": "price_desc", "size": 1})).json()

        assert body["items"][0]["productId"] == catalog["tee"]
        assert body["items"][0]["price"] == 5500.0


class TestListingBadInput:
    @pytest.mark.parametrize(
        "params",
        [
            {"sort": "cheapest"},
            {"minPrice": "-1"},
            {"maxPrice": "1.999"},
            {"size": "101"},
            {"page": "0"},
            {"minPrice": "abc"},
        ],
    )
    async def test_bad_parameters_are_refused(
        self, shop: Shop, catalog: dict[str, str], params: dict[str, str]
    ) -> None:
        response = await shop.client.get("/api/v1/products", params=params)

        assert_error(response, 400, "VALIDATION_FAILED")

    async def test_min_above_max_is_refused(self, shop: Shop, catalog: dict[str, str]) -> None:
        response = await shop.client.get("/api/v1/products", params={"minPrice": "500", "maxPrice": "100"})

        assert_error(response, 400, "VALIDATION_FAILED", message="minPrice is above maxPrice")

    async def test_an_unknown_category_is_refused(self, shop: Shop, catalog: dict[str, str]) -> None:
        response = await shop.client.get("/api/v1/products", params={"category": "no-such-thing"})

        assert_error(response, 400, "UNKNOWN_CATEGORY")
