"""Garbage in, for products: every refusal is a 400 in the error envelope naming the bad
field, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.catalog.support import OMIT, PRODUCT, admin, new_category, new_product, product_body, snapshot
from tests.conftest import Shop
from tests.users.support import assert_error, fields

EMPTY = {
    "categories": [],
    "products": [],
    "product_variants": [],
    "product_images": [],
    "catalog_outbox_events": [],
}

BAD_FIELDS = [
    ({"price": -1}, ["body.price"]),
    ({"price": 1.999}, ["body.price"]),
    ({"price": "1.999"}, ["body.price"]),
    ({"price": "a lot"}, ["body.price"]),
    ({"price": 10_000_000_000}, ["body.price"]),
    ({"currency": "XYZ"}, ["body.currency"]),
    ({"currency": "inr"}, ["body.currency"]),
    ({"currency": "RUPEES"}, ["body.currency"]),
    ({"name": ""}, ["body.name"]),
    ({"name": "   "}, ["body.name"]),
    ({"name": "x" * 256}, ["body.name"]),
    ({"sku": "has space"}, ["body.sku"]),
    ({"weightKg": -1}, ["body.weightKg"]),
    ({"weightKg": 0.1234}, ["body.weightKg"]),
    ({"weightKg": 100_000}, ["body.weightKg"]),
    ({"colour": "red"}, ["body.colour"]),
    ({"isActive": True}, ["body.isActive"]),
    ({"categoryId": 12}, ["body.categoryId"]),
    ({"variants": [{"sku": "V-1", "attributes": {"size": 42}}]}, ["body.variants.0.attributes.size"]),
    ({"variants": [{"sku": "V-1", "attributes": {"size": {"eu": "42"}}}]}, ["body.variants.0.attributes.size"]),
    ({"variants": [{"sku": "V-1", "attributes": {"size": ["M"]}}]}, ["body.variants.0.attributes.size"]),
    ({"variants": [{"sku": "V-1", "price": -5}]}, ["body.variants.0.price"]),
    ({"variants": [{"sku": "V-1", "price": 4.999}]}, ["body.variants.0.price"]),
    ({"variants": [{"sku": "V-1", "stock": 5}]}, ["body.variants.0.stock"]),
    ({"variants": "TSHIRT-RED-M"}, ["body.variants"]),
]

BAD_IMAGES = [
    ["ftp://x/y.jpg"],
    ["javascript:alert(1)"],
    ["https://"],
    [{"url": "ftp://x/y.jpg"}],
    [{"url": "javascript:alert(1)", "altText": "x"}],
    [42],
]


class TestCreateWithBadInput:
    @pytest.mark.parametrize(("changes", "bad"), BAD_FIELDS)
    async def test_the_bad_field_is_named_and_nothing_stored(
        self, shop: Shop, changes: dict[str, Any], bad: list[str]
    ) -> None:
        auth = await admin(shop)

        response = await shop.client.post("/api/v1/products", json=product_body(**changes), headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED", error="Bad Request")
        assert fields(answer) == bad
        assert await snapshot(shop) == EMPTY

    @pytest.mark.parametrize("images", BAD_IMAGES)
    async def test_a_bad_image_is_named_and_nothing_stored(self, shop: Shop, images: list[Any]) -> None:
        auth = await admin(shop)

        response = await shop.client.post("/api/v1/products", json=product_body(images=images), headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert answer["details"]
        assert all(field.startswith("body.images.0") for field in fields(answer)), fields(answer)
        assert await snapshot(shop) == EMPTY

    async def test_missing_name_and_price_are_named(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.post("/api/v1/products", json=product_body(name=OMIT, price=OMIT), headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == ["body.name", "body.price"]
        assert {detail["type"] for detail in answer["details"]} == {"missing"}
        assert await snapshot(shop) == EMPTY

    @pytest.mark.parametrize("product_id", ["123", "p_", "P_123", "p_12 3", "x" * 65])
    async def test_a_malformed_product_id_is_refused(self, shop: Shop, product_id: str) -> None:
        auth = await admin(shop)

        response = await shop.client.post("/api/v1/products", json=product_body(productId=product_id), headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == ["body.productId"]
        assert await snapshot(shop) == EMPTY

    async def test_a_new_variant_cannot_name_a_variant_id(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.post(
            "/api/v1/products", json=product_body(variants=[{"variantId": "v_mine", "sku": "V-1"}]), headers=auth
        )

        assert_error(response, 400, "VALIDATION_FAILED")
        assert await snapshot(shop) == EMPTY

    async def test_more_than_twenty_images_are_refused(self, shop: Shop) -> None:
        auth = await admin(shop)
        images = [f"https://cdn.example.com/{n}.jpg" for n in range(21)]

        response = await shop.client.post("/api/v1/products", json=product_body(images=images), headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == ["body.images"]
        assert await snapshot(shop) == EMPTY

    @pytest.mark.parametrize("payload", [[], [PRODUCT], "T-Shirt", 42, None])
    async def test_a_body_that_is_not_an_object_is_refused(self, shop: Shop, payload: Any) -> None:
        auth = await admin(shop)

        response = await shop.client.post("/api/v1/products", json=payload, headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == ["body"]
        assert await snapshot(shop) == EMPTY


class TestUpdateWithBadInput:
    @pytest.mark.parametrize(
        ("changes", "bad"),
        [
            *BAD_FIELDS,
            ({"name": None}, ["body.name"]),
            ({"price": None}, ["body.price"]),
            ({"currency": None}, ["body.currency"]),
            ({"variants": None}, ["body.variants"]),
            ({"images": None}, ["body.images"]),
            ({"productId": "p_other"}, ["body.productId"]),
        ],
    )
    async def test_the_bad_field_is_named_and_nothing_changed(
        self, shop: Shop, changes: dict[str, Any], bad: list[str]
    ) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        before = await snapshot(shop)

        response = await shop.client.put(f"/api/v1/products/{product['productId']}", json=changes, headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == bad
        assert await snapshot(shop) == before

    @pytest.mark.parametrize("images", BAD_IMAGES)
    async def test_a_bad_image_is_named_and_nothing_changed(self, shop: Shop, images: list[Any]) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        before = await snapshot(shop)

        response = await shop.client.put(
            f"/api/v1/products/{product['productId']}", json={"images": images}, headers=auth
        )

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert all(field.startswith("body.images.0") for field in fields(answer)), fields(answer)
        assert await snapshot(shop) == before


class TestMalformedJson:
    @pytest.mark.parametrize(
        "raw",
        [
            b'{"name": "T-Shirt", "price": ',
            b"{'name': 'T-Shirt', 'price': 499}",
            b'{"name": "T-Shirt", "price": 499,}',
            b'{"name": "T-Shirt", "price": 499} trailing',
            b"\xff\xfe not utf-8",
        ],
    )
    async def test_a_create_body_that_is_not_json_is_refused(self, shop: Shop, raw: bytes) -> None:
        auth = await admin(shop)

        response = await shop.client.post(
            "/api/v1/products", content=raw, headers={**auth, "Content-Type": "application/json"}
        )

        answer = assert_error(response, 400, "MALFORMED_JSON", error="Bad Request")
        assert fields(answer) == ["body"]
        assert await snapshot(shop) == EMPTY

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/api/v1/categories"),
            ("PATCH", "/api/v1/categories/{category}"),
            ("POST", "/api/v1/products"),
            ("PUT", "/api/v1/products/{product}"),
            ("POST", "/api/v1/products/{product}/images"),
        ],
    )
    async def test_every_route_with_a_body_refuses_malformed_json(self, shop: Shop, method: str, path: str) -> None:
        auth = await admin(shop)
        category = await new_category(shop, auth, "T-Shirts")
        product = await new_product(shop, auth)
        before = await snapshot(shop)

        response = await shop.client.request(
            method,
            path.format(category=category["categoryId"], product=product["productId"]),
            content=b'{"broken": ',
            headers={**auth, "Content-Type": "application/json"},
        )

        assert_error(response, 400, "MALFORMED_JSON")
        assert await snapshot(shop) == before
