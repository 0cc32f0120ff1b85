"""The catalog client over HTTP: the catalog service alone on its own database
(tests/services.py), asked by a process that does not run it (as carts, orders, notifications
and search do when split). Answers are those of the in-process client on the same database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import Service, bearer, caller, serve
from tienda.catalog.client import (
    HttpCatalogClient,
    InProcessCatalogClient,
    ProductInfo,
    VariantInfo,
    catalog_client,
)
from tienda.catalog.module import MODULE as CATALOG
from tienda.platform.auth import Role
from tienda.platform.http import Refused
from tienda.platform.runtime import Platform


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    served = serve([CATALOG], tmp_path_factory.mktemp("catalog-service"))
    yield served
    served.stop()


@pytest.fixture
async def here(service: Service) -> AsyncIterator[Platform]:
    platform = service.local()
    yield platform
    await platform.close()


@pytest.fixture
def local(here: Platform) -> InProcessCatalogClient:
    return InProcessCatalogClient(here)


@pytest.fixture
async def catalog(tmp_path: Path, service: Service) -> AsyncIterator[HttpCatalogClient]:
    platform = caller(tmp_path / "carts", catalog_url=service.url)
    client = catalog_client(platform)
    assert isinstance(client, HttpCatalogClient)
    yield client
    await platform.close()


class Admin:
    def __init__(self, service: Service, here: Platform) -> None:
        self.service = service
        self.auth = bearer(here, "u_admin", Role.ADMIN)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.service.url) as client:
            response = await client.post(path, json=body, headers=self.auth)
        assert response.status_code in (200, 201), response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def category(self, name: str, parent_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": f"{name} {uuid.uuid4().hex[:6]}"}
        if parent_id:
            body["parentId"] = parent_id
        return await self.post("/api/v1/categories", body)

    async def product(self, *, publish: bool = True, **fields: Any) -> dict[str, Any]:
        body = {"name": "Men's T-Shirt", "price": 499.99, "brand": "BrandX", **fields}
        created = await self.post("/api/v1/products", body)
        if publish:
            return await self.post(f"/api/v1/products/{created['productId']}/publish")
        return created


@pytest.fixture
def admin(service: Service, here: Platform) -> Admin:
    return Admin(service, here)


class TestCategories:
    async def test_are_every_category_as_the_in_process_client_says(
        self, admin: Admin, catalog: HttpCatalogClient, local: InProcessCatalogClient
    ) -> None:
        clothing = await admin.category("Clothing")
        shirts = await admin.category("Shirts", clothing["categoryId"])

        categories = await catalog.categories()

        assert categories == await local.categories()
        by_id = {c.category_id: c for c in categories}
        assert by_id[shirts["categoryId"]].parent_id == clothing["categoryId"]
        assert by_id[shirts["categoryId"]].slug == shirts["slug"]


class TestProducts:
    async def test_answers_products_as_they_are_now_as_the_in_process_client_does(
        self, admin: Admin, catalog: HttpCatalogClient, local: InProcessCatalogClient
    ) -> None:
        category = await admin.category("Shirts")
        shirt = await admin.product(
            categoryId=category["categoryId"],
            sku=f"TS-{uuid.uuid4().hex[:6]}",
            images=["https://cdn.example.com/p1.jpg"],
            variants=[
                {"attributes": {"color": "red", "size": "M"}, "price": 1299.50},
                {"attributes": {"color": "blue", "size": "L"}, "price": 0.1},
            ],
        )
        draft = await admin.product(publish=False, price=10)
        ids = [shirt["productId"], draft["productId"], "p_nothing"]

        products = await catalog.products(ids)

        assert products == await local.products(ids)
        assert set(products) == {shirt["productId"], draft["productId"]}
        got = products[shirt["productId"]]
        assert isinstance(got, ProductInfo)
        assert (got.price, got.currency, got.category_id, got.image, got.published) == (
            Decimal("499.99"),
            "INR",
            category["categoryId"],
            "https://cdn.example.com/p1.jpg",
            True,
        )
        red, blue = (v["variantId"] for v in shirt["variants"])
        assert got.variants[red] == VariantInfo(
            variant_id=red, sku=None, attributes={"color": "red", "size": "M"}, price=Decimal("1299.50")
        )
        assert str(got.variants[blue].price) == "0.10"
        assert got.has_line(red)
        assert not got.has_line(None)
        assert products[draft["productId"]].published is False

    async def test_in_process_an_unchanged_product_is_parsed_once_and_a_changed_one_again(
        self, admin: Admin, local: InProcessCatalogClient
    ) -> None:
        shirt = await admin.product(price=499.99)
        product_id = shirt["productId"]

        first = (await local.products([product_id]))[product_id]
        again = (await local.products([product_id]))[product_id]
        async with local.db.uow() as uow:  # changed as the route does, in this process (its cache)
            updated = await local.service.update_product(
                uow, product_id=product_id, changes={"price": Decimal("450")}, variants=None, images=None
            )
            await uow.commit()
        await local.service.publish_to_cache(product_id, updated)
        after = (await local.products([product_id]))[product_id]

        assert again is first  # the same cached bytes: not parsed again
        assert first.price == Decimal("499.99")
        assert after.price == Decimal("450.00")

    async def test_of_nothing_is_nothing(self, catalog: HttpCatalogClient) -> None:
        assert await catalog.products([]) == {}


class TestPublishedProducts:
    async def test_pages_through_every_published_product_as_the_in_process_client_does(
        self, admin: Admin, catalog: HttpCatalogClient, local: InProcessCatalogClient
    ) -> None:
        for n in range(5):
            await admin.product(name=f"Tee {n}")
        await admin.product(publish=False, name="Not yet")

        over_http = [batch async for batch in catalog.published_products(batch_size=2)]
        in_process = [batch async for batch in local.published_products(batch_size=2)]

        assert over_http == in_process
        assert all(len(batch) == 2 for batch in over_http[:-1])
        everything = [product for batch in over_http for product in batch]
        assert len(everything) >= 5
        assert len({p["productId"] for p in everything}) == len(everything)
        assert all(p["isActive"] for p in everything)
        assert "Not yet" not in {p["name"] for p in everything}
        assert [b async for b in catalog.published_products()] == [everything]

    async def test_a_made_up_cursor_is_refused(self, tmp_path: Path, service: Service) -> None:
        platform = caller(tmp_path / "search", catalog_url=service.url)
        try:
            assert platform.remotes is not None
            with pytest.raises(Refused) as refused:
                await platform.remotes.get("catalog").call(
                    "GET", "/internal/catalog/published-products", params={"after": "12345"}, idempotent=True
                )
        finally:
            await platform.close()

        assert (refused.value.status, refused.value.code) == (400, "INVALID_CURSOR")
