"""Categories: a tree with admin CRUD at /api/v1/categories, readable by anyone."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from tests.catalog.support import (
    CATEGORY_FIELDS,
    CATEGORY_ID,
    admin,
    count,
    new_category,
    new_product,
    snapshot,
)
from tests.conftest import Shop
from tests.users.support import assert_error, fields


async def _parent_key(shop: Shop, category_id: str) -> Any:
    """The stored parent of a category, as that parent's public id (None at the root)."""
    return await shop.scalar(
        "catalog",
        "SELECT p.category_id FROM categories c LEFT JOIN categories p ON p.id = c.parent_id WHERE c.category_id = :c",
        c=category_id,
    )


class TestCreateCategory:
    async def test_answers_201_with_the_stored_category(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.post("/api/v1/categories", json={"name": "T-Shirts", "slug": "tees"}, headers=auth)

        assert response.status_code == 201
        body = response.json()
        assert set(body) == CATEGORY_FIELDS
        assert CATEGORY_ID.fullmatch(body["categoryId"])
        assert {k: v for k, v in body.items() if k not in ("categoryId", "createdAt")} == {
            "name": "T-Shirts",
            "slug": "tees",
            "parentId": None,
        }
        assert datetime.fromisoformat(body["createdAt"]) == shop.clock.now()
        assert await count(shop, "categories") == 1
        stored = "SELECT {} FROM categories WHERE category_id = :c"
        assert await shop.scalar("catalog", stored.format("name"), c=body["categoryId"]) == "T-Shirts"
        assert await shop.scalar("catalog", stored.format("slug"), c=body["categoryId"]) == "tees"
        assert await _parent_key(shop, body["categoryId"]) is None

    @pytest.mark.parametrize(
        ("name", "slug"),
        [
            ("T-Shirts & Tops", "t-shirts-tops"),
            ("Shoes", "shoes"),
            ("  Home   and Kitchen  ", "home-and-kitchen"),
        ],
    )
    async def test_the_slug_defaults_to_one_made_from_the_name(self, shop: Shop, name: str, slug: str) -> None:
        auth = await admin(shop)

        body = await new_category(shop, auth, name)

        assert body["slug"] == slug
        assert (
            await shop.scalar("catalog", "SELECT slug FROM categories WHERE category_id = :c", c=body["categoryId"])
            == slug
        )

    async def test_a_sub_category_names_its_parent(self, shop: Shop) -> None:
        auth = await admin(shop)
        clothing = await new_category(shop, auth, "Clothing")

        tees = await new_category(shop, auth, "T-Shirts", parentId=clothing["categoryId"])

        assert tees["parentId"] == clothing["categoryId"]
        assert await _parent_key(shop, tees["categoryId"]) == clothing["categoryId"]

    async def test_a_taken_slug_is_refused(self, shop: Shop) -> None:
        auth = await admin(shop)
        await new_category(shop, auth, "Shoes")
        before = await snapshot(shop)

        response = await shop.client.post(
            "/api/v1/categories", json={"name": "Footwear", "slug": "shoes"}, headers=auth
        )

        assert_error(response, 409, "SLUG_TAKEN", error="Conflict")
        assert await snapshot(shop) == before

    async def test_a_name_whose_default_slug_is_taken_is_refused(self, shop: Shop) -> None:
        auth = await admin(shop)
        await new_category(shop, auth, "Shoes")
        before = await snapshot(shop)

        response = await shop.client.post("/api/v1/categories", json={"name": "SHOES"}, headers=auth)

        assert_error(response, 409, "SLUG_TAKEN")
        assert await snapshot(shop) == before

    async def test_concurrent_creates_of_one_slug_make_exactly_one(self, shop: Shop) -> None:
        auth = await admin(shop)

        responses = await asyncio.gather(
            *(shop.client.post("/api/v1/categories", json={"name": "Shoes"}, headers=auth) for _ in range(4))
        )

        assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
        for response in responses:
            if response.status_code == 409:
                assert_error(response, 409, "SLUG_TAKEN")
        assert await count(shop, "categories") == 1

    async def test_an_unknown_parent_is_refused(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.post(
            "/api/v1/categories", json={"name": "T-Shirts", "parentId": "cat_doesnotexist"}, headers=auth
        )

        assert_error(response, 400, "UNKNOWN_CATEGORY")
        assert await count(shop, "categories") == 0

    @pytest.mark.parametrize(
        ("body", "bad"),
        [
            ({}, ["body.name"]),
            ({"name": ""}, ["body.name"]),
            ({"name": "x" * 256}, ["body.name"]),
            ({"name": "Shoes", "slug": "Big Shoes"}, ["body.slug"]),
            ({"name": "Shoes", "parentId": 12}, ["body.parentId"]),
            ({"name": "Shoes", "categoryId": "cat_mine"}, ["body.categoryId"]),
        ],
    )
    async def test_bad_input_is_refused_and_nothing_stored(
        self, shop: Shop, body: dict[str, Any], bad: list[str]
    ) -> None:
        auth = await admin(shop)

        response = await shop.client.post("/api/v1/categories", json=body, headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == bad
        assert await count(shop, "categories") == 0

    async def test_a_user_may_not_create_one(self, shop: Shop) -> None:
        _, user = await shop.user()

        response = await shop.client.post("/api/v1/categories", json={"name": "Shoes"}, headers=user)

        assert_error(response, 403, "FORBIDDEN", error="Forbidden")
        assert await count(shop, "categories") == 0

    async def test_without_a_token_it_is_refused(self, shop: Shop) -> None:
        response = await shop.client.post("/api/v1/categories", json={"name": "Shoes"})

        assert_error(response, 401, "UNAUTHORIZED")
        assert await count(shop, "categories") == 0

    async def test_the_api_alias_answers_the_same(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.post("/api/categories", json={"name": "Shoes"}, headers=auth)

        assert response.status_code == 201
        read = await shop.client.get(f"/api/v1/categories/{response.json()['categoryId']}")
        assert read.json() == response.json()


class TestListCategories:
    async def test_anyone_lists_them_ordered_by_name(self, shop: Shop) -> None:
        auth = await admin(shop)
        shoes = await new_category(shop, auth, "Shoes")
        bags = await new_category(shop, auth, "Bags")
        tees = await new_category(shop, auth, "T-Shirts", parentId=shoes["categoryId"])

        response = await shop.client.get("/api/v1/categories")

        assert response.status_code == 200
        assert response.json() == {"items": [bags, shoes, tees], "page": 1, "size": 20, "total": 3}

    async def test_pages_through_them(self, shop: Shop) -> None:
        auth = await admin(shop)
        for name in ("Shoes", "Bags", "T-Shirts"):
            await new_category(shop, auth, name)

        response = await shop.client.get("/api/v1/categories", params={"page": 2, "size": 2})

        assert response.status_code == 200
        body = response.json()
        assert [c["name"] for c in body["items"]] == ["T-Shirts"]
        assert (body["page"], body["size"], body["total"]) == (2, 2, 3)

    async def test_an_empty_catalog_lists_nothing(self, shop: Shop) -> None:
        response = await shop.client.get("/api/categories")

        assert response.status_code == 200
        assert response.json() == {"items": [], "page": 1, "size": 20, "total": 0}


class TestGetCategory:
    async def test_anyone_reads_one(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_category(shop, auth, "Shoes")

        response = await shop.client.get(f"/api/v1/categories/{created['categoryId']}")

        assert response.status_code == 200
        assert response.json() == created

    async def test_an_unknown_one_is_404(self, shop: Shop) -> None:
        response = await shop.client.get("/api/v1/categories/cat_doesnotexist")

        assert_error(response, 404, "CATEGORY_NOT_FOUND", error="Not Found")


class TestUpdateCategory:
    async def test_renaming_keeps_slug_and_parent(self, shop: Shop) -> None:
        auth = await admin(shop)
        clothing = await new_category(shop, auth, "Clothing")
        tees = await new_category(shop, auth, "T-Shirts", parentId=clothing["categoryId"])

        response = await shop.client.patch(
            f"/api/v1/categories/{tees['categoryId']}", json={"name": "Tees"}, headers=auth
        )

        assert response.status_code == 200
        assert response.json() == {**tees, "name": "Tees"}
        read = await shop.client.get(f"/api/v1/categories/{tees['categoryId']}")
        assert read.json() == {**tees, "name": "Tees"}
        assert await _parent_key(shop, tees["categoryId"]) == clothing["categoryId"]

    async def test_changes_the_slug(self, shop: Shop) -> None:
        auth = await admin(shop)
        tees = await new_category(shop, auth, "T-Shirts")

        response = await shop.client.patch(
            f"/api/v1/categories/{tees['categoryId']}", json={"slug": "tees"}, headers=auth
        )

        assert response.status_code == 200
        assert response.json() == {**tees, "slug": "tees"}
        assert await count(shop, "categories", "slug = :s", s="tees") == 1

    async def test_a_taken_slug_is_refused(self, shop: Shop) -> None:
        auth = await admin(shop)
        await new_category(shop, auth, "Shoes")
        tees = await new_category(shop, auth, "T-Shirts")
        before = await snapshot(shop)

        response = await shop.client.patch(
            f"/api/v1/categories/{tees['categoryId']}", json={"slug": "shoes"}, headers=auth
        )

        assert_error(response, 409, "SLUG_TAKEN")
        assert await snapshot(shop) == before

    async def test_moves_under_another_parent(self, shop: Shop) -> None:
        auth = await admin(shop)
        clothing = await new_category(shop, auth, "Clothing")
        sale = await new_category(shop, auth, "Sale")
        tees = await new_category(shop, auth, "T-Shirts", parentId=clothing["categoryId"])

        response = await shop.client.patch(
            f"/api/v1/categories/{tees['categoryId']}", json={"parentId": sale["categoryId"]}, headers=auth
        )

        assert response.status_code == 200
        assert response.json() == {**tees, "parentId": sale["categoryId"]}
        assert await _parent_key(shop, tees["categoryId"]) == sale["categoryId"]

    async def test_a_null_parent_moves_it_to_the_root(self, shop: Shop) -> None:
        auth = await admin(shop)
        clothing = await new_category(shop, auth, "Clothing")
        tees = await new_category(shop, auth, "T-Shirts", parentId=clothing["categoryId"])

        response = await shop.client.patch(
            f"/api/v1/categories/{tees['categoryId']}", json={"parentId": None}, headers=auth
        )

        assert response.status_code == 200
        assert response.json() == {**tees, "parentId": None}
        assert await count(shop, "categories", "parent_id IS NULL") == 2

    @pytest.mark.parametrize("target", ["self", "child", "grandchild"])
    async def test_moving_under_itself_or_a_descendant_is_refused(self, shop: Shop, target: str) -> None:
        auth = await admin(shop)
        clothing = await new_category(shop, auth, "Clothing")
        tops = await new_category(shop, auth, "Tops", parentId=clothing["categoryId"])
        tees = await new_category(shop, auth, "T-Shirts", parentId=tops["categoryId"])
        parent = {"self": clothing, "child": tops, "grandchild": tees}[target]
        before = await snapshot(shop)

        response = await shop.client.patch(
            f"/api/v1/categories/{clothing['categoryId']}",
            json={"parentId": parent["categoryId"], "name": "Apparel"},
            headers=auth,
        )

        assert_error(response, 409, "CATEGORY_CYCLE", error="Conflict")
        assert await snapshot(shop) == before

    async def test_an_unknown_parent_is_refused(self, shop: Shop) -> None:
        auth = await admin(shop)
        tees = await new_category(shop, auth, "T-Shirts")
        before = await snapshot(shop)

        response = await shop.client.patch(
            f"/api/v1/categories/{tees['categoryId']}", json={"parentId": "cat_doesnotexist"}, headers=auth
        )

        assert_error(response, 400, "UNKNOWN_CATEGORY")
        assert await snapshot(shop) == before

    async def test_an_unknown_category_is_404(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.patch("/api/v1/categories/cat_doesnotexist", json={"name": "X"}, headers=auth)

        assert_error(response, 404, "CATEGORY_NOT_FOUND")

    @pytest.mark.parametrize(
        ("body", "bad"),
        [
            ({"name": None}, ["body.name"]),
            ({"name": ""}, ["body.name"]),
            ({"slug": None}, ["body.slug"]),
            ({"slug": "Not A Slug"}, ["body.slug"]),
            ({"colour": "red"}, ["body.colour"]),
        ],
    )
    async def test_bad_input_is_refused_and_nothing_changed(
        self, shop: Shop, body: dict[str, Any], bad: list[str]
    ) -> None:
        auth = await admin(shop)
        tees = await new_category(shop, auth, "T-Shirts")
        before = await snapshot(shop)

        response = await shop.client.patch(f"/api/v1/categories/{tees['categoryId']}", json=body, headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == bad
        assert await snapshot(shop) == before

    async def test_a_user_may_not_change_one(self, shop: Shop) -> None:
        auth = await admin(shop)
        tees = await new_category(shop, auth, "T-Shirts")
        _, user = await shop.user()
        before = await snapshot(shop)

        response = await shop.client.patch(f"/api/v1/categories/{tees['categoryId']}", json={"name": "X"}, headers=user)

        assert_error(response, 403, "FORBIDDEN")
        assert await snapshot(shop) == before


class TestDeleteCategory:
    async def test_an_unused_category_is_removed(self, shop: Shop) -> None:
        auth = await admin(shop)
        tees = await new_category(shop, auth, "T-Shirts")

        response = await shop.client.delete(f"/api/v1/categories/{tees['categoryId']}", headers=auth)

        assert response.status_code == 204
        assert response.content == b""
        assert await count(shop, "categories") == 0
        assert_error(await shop.client.get(f"/api/v1/categories/{tees['categoryId']}"), 404, "CATEGORY_NOT_FOUND")

    async def test_one_with_sub_categories_is_refused(self, shop: Shop) -> None:
        auth = await admin(shop)
        clothing = await new_category(shop, auth, "Clothing")
        await new_category(shop, auth, "T-Shirts", parentId=clothing["categoryId"])
        before = await snapshot(shop)

        response = await shop.client.delete(f"/api/v1/categories/{clothing['categoryId']}", headers=auth)

        assert_error(response, 409, "CATEGORY_IN_USE", error="Conflict")
        assert await snapshot(shop) == before

    async def test_one_with_products_is_refused(self, shop: Shop) -> None:
        auth = await admin(shop)
        tees = await new_category(shop, auth, "T-Shirts")
        await new_product(shop, auth, categoryId=tees["categoryId"])
        before = await snapshot(shop)

        response = await shop.client.delete(f"/api/v1/categories/{tees['categoryId']}", headers=auth)

        assert_error(response, 409, "CATEGORY_IN_USE")
        assert await snapshot(shop) == before

    async def test_one_whose_products_were_hard_deleted_is_removed(self, shop: Shop) -> None:
        auth = await admin(shop)
        tees = await new_category(shop, auth, "T-Shirts")
        product = await new_product(shop, auth, categoryId=tees["categoryId"])
        gone = await shop.client.delete(
            f"/api/v1/products/{product['productId']}", params={"hard": "true"}, headers=auth
        )
        assert gone.status_code == 204

        response = await shop.client.delete(f"/api/v1/categories/{tees['categoryId']}", headers=auth)

        assert response.status_code == 204
        assert await count(shop, "categories") == 0

    async def test_an_unknown_category_is_404(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.delete("/api/v1/categories/cat_doesnotexist", headers=auth)

        assert_error(response, 404, "CATEGORY_NOT_FOUND")

    async def test_a_user_may_not_delete_one(self, shop: Shop) -> None:
        auth = await admin(shop)
        tees = await new_category(shop, auth, "T-Shirts")
        _, user = await shop.user()

        forbidden = await shop.client.delete(f"/api/v1/categories/{tees['categoryId']}", headers=user)
        anonymous = await shop.client.delete(f"/api/v1/categories/{tees['categoryId']}")

        assert_error(forbidden, 403, "FORBIDDEN")
        assert_error(anonymous, 401, "UNAUTHORIZED")
        assert await count(shop, "categories") == 1
