"""Products: creating (unpublished), reading (the public sees only published ones), and
partial updates, variants and images included."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.catalog.support import (
    IMG1,
    IMG2,
    IMG3,
    OMIT,
    PRODUCT,
    PRODUCT_FIELDS,
    PRODUCT_ID,
    VARIANT_FIELDS,
    VARIANT_ID,
    admin,
    count,
    events,
    new_category,
    new_product,
    product_body,
    published_product,
    read_as_admin,
    snapshot,
    stored_images,
    stored_product,
    stored_variants,
)
from tests.conftest import Shop
from tests.users.support import assert_error


class TestCreateProduct:
    async def test_answers_201_with_the_unpublished_product(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.post("/api/v1/products", json=PRODUCT, headers=auth)

        assert response.status_code == 201
        body = response.json()
        assert set(body) == PRODUCT_FIELDS
        assert PRODUCT_ID.fullmatch(body["productId"])
        [variant] = body["variants"]
        assert set(variant) == VARIANT_FIELDS
        assert VARIANT_ID.fullmatch(variant["variantId"])
        assert {k: v for k, v in body.items() if k not in ("productId", "createdAt", "updatedAt")} == {
            "name": "Men's T-Shirt",
            "sku": "TSHIRT-001",
            "description": "100% Cotton",
            "price": 499,
            "currency": "INR",
            "brand": "BrandX",
            "categoryId": None,
            "weightKg": None,
            "dimensions": None,
            "variants": [
                {
                    "variantId": variant["variantId"],
                    "sku": "TSHIRT-RED-M",
                    "attributes": {"color": "red", "size": "M"},
                    "price": 499,
                    "stock": 0,  # inventory has not stocked it: none to buy
                }
            ],
            "stock": 0,
            "images": [IMG1],
            "isActive": False,
            "deletedAt": None,
        }
        assert isinstance(body["price"], float | int)
        assert isinstance(variant["price"], float | int)
        assert datetime.fromisoformat(body["createdAt"]) == shop.clock.now()
        assert datetime.fromisoformat(body["updatedAt"]) == shop.clock.now()

    async def test_stores_the_product_its_variants_and_images(self, shop: Shop) -> None:
        auth = await admin(shop)

        body = await new_product(shop, auth)

        product_id = body["productId"]
        assert await count(shop, "products") == 1
        assert await stored_product(shop, product_id, "price") == Decimal("499.00")
        assert str(await stored_product(shop, product_id, "price")) == "499.00"
        assert await stored_product(shop, product_id, "price_currency") == "INR"
        assert await stored_product(shop, product_id, "sku") == "TSHIRT-001"
        assert await stored_product(shop, product_id, "description") == "100% Cotton"
        assert bool(await stored_product(shop, product_id, "is_active")) is False
        assert await stored_product(shop, product_id, "deleted_at") is None
        assert await stored_variants(shop, product_id) == [
            (body["variants"][0]["variantId"], "TSHIRT-RED-M", {"color": "red", "size": "M"}, Decimal("499.00"))
        ]
        assert await stored_images(shop, product_id) == [(IMG1, None, True)]

    async def test_publishes_product_created(self, shop: Shop) -> None:
        auth = await admin(shop)

        body = await new_product(shop, auth)

        [payload] = await events(shop, "product.created")
        assert payload["productId"] == body["productId"]
        assert payload["product"] == body
        assert await count(shop, "catalog_outbox_events") == 1

    async def test_a_given_product_id_is_kept(self, shop: Shop) -> None:
        auth = await admin(shop)

        body = await new_product(shop, auth, productId="p_123")

        assert body["productId"] == "p_123"
        assert await count(shop, "products", "product_id = :p", p="p_123") == 1
        assert (await read_as_admin(shop, auth, "p_123")) == body

    async def test_money_is_kept_to_the_cent(self, shop: Shop) -> None:
        auth = await admin(shop)

        body = await new_product(shop, auth, price=1299.5, variants=[{"sku": "V-1", "price": 0.99}])

        assert body["price"] == 1299.5
        assert body["variants"][0]["price"] == 0.99
        assert await stored_product(shop, body["productId"], "price") == Decimal("1299.50")
        assert [row[3] for row in await stored_variants(shop, body["productId"])] == [Decimal("0.99")]

    async def test_the_largest_price_fits(self, shop: Shop) -> None:
        auth = await admin(shop)

        body = await new_product(shop, auth, price=9999999999.99, variants=[])

        assert body["price"] == 9999999999.99
        assert await stored_product(shop, body["productId"], "price") == Decimal("9999999999.99")

    async def test_a_variant_without_a_price_costs_the_products_price(self, shop: Shop) -> None:
        auth = await admin(shop)

        body = await new_product(
            shop,
            auth,
            price=549,
            variants=[{"sku": "TSHIRT-RED-L", "attributes": {"size": "L"}}, {"sku": "TSHIRT-RED-XL", "price": 599}],
        )

        assert [(v["sku"], v["price"]) for v in body["variants"]] == [("TSHIRT-RED-L", 549), ("TSHIRT-RED-XL", 599)]
        assert len({v["variantId"] for v in body["variants"]}) == 2
        assert all(VARIANT_ID.fullmatch(v["variantId"]) for v in body["variants"])
        assert await count(shop, "product_variants") == 2

    async def test_only_name_and_price_are_needed(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.post("/api/v1/products", json={"name": "Mug", "price": 250}, headers=auth)

        assert response.status_code == 201
        body = response.json()
        assert {k: v for k, v in body.items() if k not in ("productId", "createdAt", "updatedAt")} == {
            "name": "Mug",
            "sku": None,
            "description": None,
            "price": 250,
            "currency": "INR",
            "brand": None,
            "categoryId": None,
            "weightKg": None,
            "dimensions": None,
            "variants": [],
            "stock": 0,
            "images": [],
            "isActive": False,
            "deletedAt": None,
        }

    async def test_currency_weight_and_dimensions_are_kept(self, shop: Shop) -> None:
        auth = await admin(shop)

        body = await new_product(shop, auth, currency="USD", weightKg=0.25, dimensions="30x20x2 cm")

        assert body["currency"] == "USD"
        assert Decimal(str(body["weightKg"])) == Decimal("0.25")
        assert body["dimensions"] == "30x20x2 cm"
        assert await stored_product(shop, body["productId"], "price_currency") == "USD"
        assert await stored_product(shop, body["productId"], "weight_kg") == Decimal("0.25")
        assert (await read_as_admin(shop, auth, body["productId"])) == body

    async def test_a_category_is_linked(self, shop: Shop) -> None:
        auth = await admin(shop)
        tees = await new_category(shop, auth, "T-Shirts")

        body = await new_product(shop, auth, categoryId=tees["categoryId"])

        assert body["categoryId"] == tees["categoryId"]
        linked = await shop.scalar(
            "catalog",
            "SELECT c.category_id FROM products p JOIN categories c ON c.id = p.category_id WHERE p.product_id = :p",
            p=body["productId"],
        )
        assert linked == tees["categoryId"]

    async def test_images_given_with_positions_are_listed_in_position_order(self, shop: Shop) -> None:
        auth = await admin(shop)

        body = await new_product(
            shop,
            auth,
            images=[
                {"url": IMG2, "altText": "Back", "position": 1},
                {"url": IMG1, "altText": "Front", "position": 0},
                {"url": IMG3, "position": 2},
            ],
        )

        assert body["images"] == [IMG1, IMG2, IMG3]
        assert await stored_images(shop, body["productId"]) == [
            (IMG1, "Front", True),
            (IMG2, "Back", False),
            (IMG3, None, False),
        ]

    async def test_an_unknown_category_is_refused(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.post(
            "/api/v1/products", json=product_body(categoryId="cat_doesnotexist"), headers=auth
        )

        assert_error(response, 400, "UNKNOWN_CATEGORY")
        assert await snapshot(shop) == {
            "categories": [],
            "products": [],
            "product_variants": [],
            "product_images": [],
            "catalog_outbox_events": [],
        }

    async def test_a_taken_product_id_is_refused(self, shop: Shop) -> None:
        auth = await admin(shop)
        await new_product(shop, auth, productId="p_123")
        before = await snapshot(shop)

        response = await shop.client.post(
            "/api/v1/products",
            json=product_body(productId="p_123", sku="OTHER-1", variants=[{"sku": "OTHER-1-M"}]),
            headers=auth,
        )

        assert_error(response, 409, "PRODUCT_ID_TAKEN", error="Conflict")
        assert await snapshot(shop) == before

    @pytest.mark.parametrize(
        "changes",
        [
            {"sku": "TSHIRT-001", "variants": []},  # another product's SKU
            {"sku": "TSHIRT-RED-M", "variants": []},  # another product's variant's SKU
            {"sku": "MUG-1", "variants": [{"sku": "TSHIRT-001"}]},  # a variant taking a product's SKU
            {"sku": "MUG-1", "variants": [{"sku": "TSHIRT-RED-M"}]},  # a variant taking a variant's SKU
            {"sku": "MUG-1", "variants": [{"sku": "MUG-1"}]},  # repeated inside the body
            {"sku": "MUG-1", "variants": [{"sku": "MUG-1-A"}, {"sku": "MUG-1-A"}]},
            {"sku": OMIT, "variants": [{"sku": "MUG-1-A"}, {"sku": "MUG-1-A"}]},
        ],
    )
    async def test_a_taken_sku_is_refused(self, shop: Shop, changes: dict[str, Any]) -> None:
        auth = await admin(shop)
        await new_product(shop, auth)
        before = await snapshot(shop)

        response = await shop.client.post(
            "/api/v1/products", json=product_body(name="Mug", images=[], **changes), headers=auth
        )

        assert_error(response, 409, "SKU_TAKEN", error="Conflict")
        assert await snapshot(shop) == before

    async def test_the_sku_of_a_soft_deleted_product_stays_taken(self, shop: Shop) -> None:
        auth = await admin(shop)
        first = await new_product(shop, auth)
        assert (await shop.client.delete(f"/api/v1/products/{first['productId']}", headers=auth)).status_code == 204
        before = await snapshot(shop)

        response = await shop.client.post("/api/v1/products", json=PRODUCT, headers=auth)

        assert_error(response, 409, "SKU_TAKEN")
        assert await snapshot(shop) == before

    async def test_the_skus_of_a_hard_deleted_product_are_free_again(self, shop: Shop) -> None:
        auth = await admin(shop)
        first = await new_product(shop, auth)
        gone = await shop.client.delete(f"/api/v1/products/{first['productId']}", params={"hard": "true"}, headers=auth)
        assert gone.status_code == 204

        response = await shop.client.post("/api/v1/products", json=PRODUCT, headers=auth)

        assert response.status_code == 201
        assert await count(shop, "products") == 1
        assert await count(shop, "product_variants") == 1

    async def test_concurrent_creates_with_one_sku_make_exactly_one(self, shop: Shop) -> None:
        auth = await admin(shop)

        responses = await asyncio.gather(
            *(
                shop.client.post("/api/v1/products", json=product_body(variants=[{"sku": f"TSHIRT-{n}"}]), headers=auth)
                for n in range(4)
            )
        )

        assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
        for response in responses:
            if response.status_code == 409:
                assert_error(response, 409, "SKU_TAKEN")
        assert await count(shop, "products") == 1
        assert await count(shop, "product_variants") == 1
        assert len(await events(shop, "product.created")) == 1

    async def test_concurrent_creates_with_one_product_id_make_exactly_one(self, shop: Shop) -> None:
        auth = await admin(shop)

        responses = await asyncio.gather(
            *(
                shop.client.post(
                    "/api/v1/products",
                    json=product_body(productId="p_123", sku=f"SKU-{n}", variants=[], images=[]),
                    headers=auth,
                )
                for n in range(4)
            )
        )

        assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
        for response in responses:
            if response.status_code == 409:
                assert_error(response, 409, "PRODUCT_ID_TAKEN")
        assert await count(shop, "products") == 1

    async def test_a_user_may_not_create_one(self, shop: Shop) -> None:
        _, user = await shop.user()

        forbidden = await shop.client.post("/api/v1/products", json=PRODUCT, headers=user)
        anonymous = await shop.client.post("/api/v1/products", json=PRODUCT)

        assert_error(forbidden, 403, "FORBIDDEN")
        assert_error(anonymous, 401, "UNAUTHORIZED")
        assert await count(shop, "products") == 0
        assert await count(shop, "catalog_outbox_events") == 0

    async def test_the_api_alias_answers_the_same(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.post("/api/products", json=PRODUCT, headers=auth)

        assert response.status_code == 201
        assert (await read_as_admin(shop, auth, response.json()["productId"])) == response.json()


class TestGetProduct:
    async def test_anyone_reads_a_published_product(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)
        _, user = await shop.user()

        anonymous = await shop.client.get(f"/api/v1/products/{product['productId']}")
        signed_in = await shop.client.get(f"/api/v1/products/{product['productId']}", headers=user)
        aliased = await shop.client.get(f"/api/products/{product['productId']}")

        for response in (anonymous, signed_in, aliased):
            assert response.status_code == 200
            assert response.json() == product
        assert product["isActive"] is True

    async def test_an_unpublished_product_is_hidden_from_the_public(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        _, user = await shop.user()

        anonymous = await shop.client.get(f"/api/v1/products/{product['productId']}")
        signed_in = await shop.client.get(f"/api/v1/products/{product['productId']}", headers=user)

        for response in (anonymous, signed_in):
            assert_error(response, 404, "PRODUCT_NOT_FOUND", error="Not Found")
            assert "Men's T-Shirt" not in response.text

    async def test_an_admin_reads_an_unpublished_product(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)

        response = await shop.client.get(f"/api/v1/products/{product['productId']}", headers=auth)

        assert response.status_code == 200
        assert response.json() == product

    async def test_a_soft_deleted_product_is_hidden_from_the_public_but_not_from_admins(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)
        shop.clock.advance(minutes=5)
        assert (await shop.client.delete(f"/api/v1/products/{product['productId']}", headers=auth)).status_code == 204
        _, user = await shop.user()

        anonymous = await shop.client.get(f"/api/v1/products/{product['productId']}")
        signed_in = await shop.client.get(f"/api/v1/products/{product['productId']}", headers=user)
        as_admin = await shop.client.get(f"/api/v1/products/{product['productId']}", headers=auth)

        assert_error(anonymous, 404, "PRODUCT_NOT_FOUND")
        assert_error(signed_in, 404, "PRODUCT_NOT_FOUND")
        assert as_admin.status_code == 200
        body = as_admin.json()
        assert datetime.fromisoformat(body["deletedAt"]) == shop.clock.now()
        assert {k: v for k, v in body.items() if k not in ("deletedAt", "updatedAt")} == {
            k: v for k, v in product.items() if k not in ("deletedAt", "updatedAt")
        }

    async def test_an_unknown_product_is_404_even_for_an_admin(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.get("/api/v1/products/p_doesnotexist", headers=auth)

        assert_error(response, 404, "PRODUCT_NOT_FOUND", error="Not Found")


class TestUpdateProduct:
    async def test_changes_only_the_fields_sent(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)
        shop.clock.advance(minutes=5)

        response = await shop.client.put(
            f"/api/v1/products/{created['productId']}", json={"price": 449.00}, headers=auth
        )

        assert response.status_code == 200
        body = response.json()
        assert {k: v for k, v in body.items() if k != "updatedAt"} == {
            k: v for k, v in {**created, "price": 449}.items() if k != "updatedAt"
        }
        assert datetime.fromisoformat(body["updatedAt"]) == shop.clock.now()
        assert datetime.fromisoformat(body["createdAt"]) == datetime.fromisoformat(created["createdAt"])
        assert await stored_product(shop, created["productId"], "price") == Decimal("449.00")
        assert await stored_product(shop, created["productId"], "description") == "100% Cotton"
        assert await stored_product(shop, created["productId"], "name") == "Men's T-Shirt"
        assert (await read_as_admin(shop, auth, created["productId"])) == body

    async def test_changes_several_fields(self, shop: Shop) -> None:
        auth = await admin(shop)
        tees = await new_category(shop, auth, "T-Shirts")
        created = await new_product(shop, auth)

        response = await shop.client.put(
            f"/api/v1/products/{created['productId']}",
            json={
                "name": "Classic Tee",
                "sku": "TEE-CLASSIC",
                "brand": "BrandY",
                "categoryId": tees["categoryId"],
                "currency": "USD",
                "dimensions": "30x20x2 cm",
            },
            headers=auth,
        )

        assert response.status_code == 200
        body = response.json()
        assert {k: body[k] for k in ("name", "sku", "brand", "categoryId", "currency", "dimensions")} == {
            "name": "Classic Tee",
            "sku": "TEE-CLASSIC",
            "brand": "BrandY",
            "categoryId": tees["categoryId"],
            "currency": "USD",
            "dimensions": "30x20x2 cm",
        }
        assert (body["description"], body["price"], body["variants"], body["images"]) == (
            created["description"],
            created["price"],
            created["variants"],
            created["images"],
        )
        assert await stored_product(shop, created["productId"], "sku") == "TEE-CLASSIC"
        assert await stored_product(shop, created["productId"], "price_currency") == "USD"

    async def test_an_optional_field_sent_as_null_is_cleared(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)

        response = await shop.client.put(
            f"/api/v1/products/{created['productId']}", json={"description": None}, headers=auth
        )

        assert response.status_code == 200
        assert response.json()["description"] is None
        assert await stored_product(shop, created["productId"], "description") is None

    async def test_keeping_its_own_sku_is_not_a_conflict(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)
        [variant] = created["variants"]

        response = await shop.client.put(
            f"/api/v1/products/{created['productId']}",
            json={"sku": "TSHIRT-001", "variants": [{"variantId": variant["variantId"], "sku": "TSHIRT-RED-M"}]},
            headers=auth,
        )

        assert response.status_code == 200, response.text
        assert response.json()["variants"] == [variant]

    async def test_publishes_product_updated(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)

        response = await shop.client.put(f"/api/v1/products/{created['productId']}", json={"price": 449}, headers=auth)

        [payload] = await events(shop, "product.updated")
        assert payload["productId"] == created["productId"]
        assert payload["product"] == response.json()

    async def test_an_unknown_product_is_404(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.put("/api/v1/products/p_doesnotexist", json={"price": 449}, headers=auth)

        assert_error(response, 404, "PRODUCT_NOT_FOUND")
        assert await count(shop, "catalog_outbox_events") == 0

    async def test_an_unknown_category_is_refused(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)
        before = await snapshot(shop)

        response = await shop.client.put(
            f"/api/v1/products/{created['productId']}", json={"categoryId": "cat_doesnotexist"}, headers=auth
        )

        assert_error(response, 400, "UNKNOWN_CATEGORY")
        assert await snapshot(shop) == before

    @pytest.mark.parametrize(
        "changes",
        [
            {"sku": "MUG-1"},  # another product's SKU
            {"sku": "MUG-1-A"},  # another product's variant's SKU
            {"variants": [{"sku": "MUG-1"}]},
            {"variants": [{"sku": "MUG-1-A"}]},
            {"variants": [{"sku": "TSHIRT-001"}]},  # its own product SKU
            {"variants": [{"sku": "NEW-1"}, {"sku": "NEW-1"}]},
        ],
    )
    async def test_a_taken_sku_is_refused(self, shop: Shop, changes: dict[str, Any]) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)
        await new_product(shop, auth, name="Mug", sku="MUG-1", variants=[{"sku": "MUG-1-A"}], images=[])
        before = await snapshot(shop)

        response = await shop.client.put(f"/api/v1/products/{created['productId']}", json=changes, headers=auth)

        assert_error(response, 409, "SKU_TAKEN")
        assert await snapshot(shop) == before

    async def test_a_user_may_not_update_one(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await published_product(shop, auth)
        _, user = await shop.user()
        before = await snapshot(shop)

        forbidden = await shop.client.put(f"/api/v1/products/{created['productId']}", json={"price": 1}, headers=user)
        anonymous = await shop.client.put(f"/api/v1/products/{created['productId']}", json={"price": 1})

        assert_error(forbidden, 403, "FORBIDDEN")
        assert_error(anonymous, 401, "UNAUTHORIZED")
        assert await snapshot(shop) == before


class TestUpdateVariants:
    async def _product(self, shop: Shop, auth: dict[str, str]) -> dict[str, Any]:
        return await new_product(
            shop,
            auth,
            variants=[
                {"sku": "TSHIRT-RED-M", "attributes": {"color": "red", "size": "M"}},
                {"sku": "TSHIRT-RED-L", "attributes": {"color": "red", "size": "L"}, "price": 549},
            ],
        )

    async def test_the_list_sent_is_the_new_list(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await self._product(shop, auth)
        medium, large = created["variants"]

        response = await shop.client.put(
            f"/api/v1/products/{created['productId']}",
            json={
                "variants": [
                    {
                        "variantId": medium["variantId"],
                        "sku": "TSHIRT-RED-M",
                        "attributes": {"size": "M"},
                        "price": 449,
                    },
                    {"sku": "TSHIRT-RED-XL", "attributes": {"color": "red", "size": "XL"}, "price": 599},
                ]
            },
            headers=auth,
        )

        assert response.status_code == 200
        body = response.json()
        changed, added = body["variants"]
        assert changed == {**medium, "attributes": {"size": "M"}, "price": 449}
        assert VARIANT_ID.fullmatch(added["variantId"])
        assert added["variantId"] not in (medium["variantId"], large["variantId"])
        assert added == {
            "variantId": added["variantId"],
            "sku": "TSHIRT-RED-XL",
            "attributes": {"color": "red", "size": "XL"},
            "price": 599,
            "stock": 0,
        }
        assert await stored_variants(shop, created["productId"]) == [
            (medium["variantId"], "TSHIRT-RED-M", {"size": "M"}, Decimal("449.00")),
            (added["variantId"], "TSHIRT-RED-XL", {"color": "red", "size": "XL"}, Decimal("599.00")),
        ]
        assert await count(shop, "product_variants", "variant_id = :v", v=large["variantId"]) == 0
        assert (await read_as_admin(shop, auth, created["productId"])) == body

    async def test_a_sent_variant_keeps_what_it_does_not_mention(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await self._product(shop, auth)
        medium, large = created["variants"]

        response = await shop.client.put(
            f"/api/v1/products/{created['productId']}",
            json={"variants": [{"variantId": medium["variantId"]}, {"variantId": large["variantId"], "price": 500}]},
            headers=auth,
        )

        assert response.status_code == 200
        assert response.json()["variants"] == [medium, {**large, "price": 500}]

    async def test_an_empty_list_removes_every_variant(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await self._product(shop, auth)

        response = await shop.client.put(
            f"/api/v1/products/{created['productId']}", json={"variants": []}, headers=auth
        )

        assert response.status_code == 200
        assert response.json()["variants"] == []
        assert await count(shop, "product_variants") == 0

    async def test_a_removed_variants_sku_can_be_given_to_a_new_one(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await self._product(shop, auth)
        medium, _ = created["variants"]

        response = await shop.client.put(
            f"/api/v1/products/{created['productId']}",
            json={
                "variants": [{"variantId": medium["variantId"]}, {"sku": "TSHIRT-RED-L", "attributes": {"size": "L"}}]
            },
            headers=auth,
        )

        assert response.status_code == 200, response.text
        assert [v["sku"] for v in response.json()["variants"]] == ["TSHIRT-RED-M", "TSHIRT-RED-L"]
        assert await count(shop, "product_variants") == 2

    async def test_a_new_variant_without_a_price_costs_the_products_price(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth, price=499, variants=[])

        response = await shop.client.put(
            f"/api/v1/products/{created['productId']}", json={"variants": [{"sku": "TSHIRT-BLUE-M"}]}, headers=auth
        )

        assert response.status_code == 200
        assert [v["price"] for v in response.json()["variants"]] == [499]

    @pytest.mark.parametrize("which", ["unknown", "another products"])
    async def test_an_unknown_variant_id_is_refused(self, shop: Shop, which: str) -> None:
        auth = await admin(shop)
        created = await self._product(shop, auth)
        mug = await new_product(shop, auth, name="Mug", sku="MUG-1", variants=[{"sku": "MUG-1-A"}], images=[])
        stranger = "v_doesnotexist" if which == "unknown" else mug["variants"][0]["variantId"]
        before = await snapshot(shop)

        response = await shop.client.put(
            f"/api/v1/products/{created['productId']}",
            json={"name": "Changed", "variants": [{"variantId": stranger, "price": 1}]},
            headers=auth,
        )

        assert_error(response, 400, "UNKNOWN_VARIANT")
        assert await snapshot(shop) == before


class TestUpdateImages:
    async def test_images_sent_replace_the_list(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)

        response = await shop.client.put(
            f"/api/v1/products/{created['productId']}",
            json={"images": [IMG3, {"url": IMG2, "altText": "Back"}]},
            headers=auth,
        )

        assert response.status_code == 200
        assert response.json()["images"] == [IMG3, IMG2]
        assert await stored_images(shop, created["productId"]) == [(IMG3, None, True), (IMG2, "Back", False)]

    async def test_an_empty_list_removes_every_image(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)

        response = await shop.client.put(f"/api/v1/products/{created['productId']}", json={"images": []}, headers=auth)

        assert response.status_code == 200
        assert response.json()["images"] == []
        assert await count(shop, "product_images") == 0

    async def test_images_not_sent_are_kept(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth, images=[IMG1, IMG2])

        response = await shop.client.put(f"/api/v1/products/{created['productId']}", json={"name": "Tee"}, headers=auth)

        assert response.status_code == 200
        assert response.json()["images"] == [IMG1, IMG2]
        assert await count(shop, "product_images") == 2
