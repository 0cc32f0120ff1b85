"""Publishing, unpublishing and deleting (soft by default, `?hard=true` for good)."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.catalog.support import (
    admin,
    count,
    events,
    new_product,
    published_product,
    read_as_admin,
    snapshot,
    stored_product,
)
from tests.conftest import Shop
from tests.users.support import assert_error


class TestPublish:
    async def test_makes_the_product_public(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)
        shop.clock.advance(minutes=1)

        response = await shop.client.post(f"/api/v1/products/{created['productId']}/publish", headers=auth)

        assert response.status_code == 200
        body = response.json()
        assert body["isActive"] is True
        assert {k: v for k, v in body.items() if k not in ("isActive", "updatedAt")} == {
            k: v for k, v in created.items() if k not in ("isActive", "updatedAt")
        }
        assert bool(await stored_product(shop, created["productId"], "is_active")) is True
        public = await shop.client.get(f"/api/v1/products/{created['productId']}")
        assert public.status_code == 200
        assert public.json() == body

    async def test_publishes_product_published(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)

        response = await shop.client.post(f"/api/v1/products/{created['productId']}/publish", headers=auth)

        [payload] = await events(shop, "product.published")
        assert payload["productId"] == created["productId"]
        assert payload["product"] == response.json()

    async def test_a_soft_deleted_product_cannot_be_published(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)
        assert (await shop.client.delete(f"/api/v1/products/{created['productId']}", headers=auth)).status_code == 204
        before = await snapshot(shop)

        response = await shop.client.post(f"/api/v1/products/{created['productId']}/publish", headers=auth)

        assert_error(response, 409, "PRODUCT_DELETED", error="Conflict")
        assert await snapshot(shop) == before
        assert_error(await shop.client.get(f"/api/v1/products/{created['productId']}"), 404, "PRODUCT_NOT_FOUND")

    @pytest.mark.parametrize("action", ["publish", "unpublish"])
    async def test_an_unknown_product_is_404(self, shop: Shop, action: str) -> None:
        auth = await admin(shop)

        response = await shop.client.post(f"/api/v1/products/p_doesnotexist/{action}", headers=auth)

        assert_error(response, 404, "PRODUCT_NOT_FOUND")
        assert await count(shop, "catalog_outbox_events") == 0

    @pytest.mark.parametrize("action", ["publish", "unpublish"])
    async def test_a_user_may_not_do_it(self, shop: Shop, action: str) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)
        _, user = await shop.user()
        before = await snapshot(shop)

        forbidden = await shop.client.post(f"/api/v1/products/{created['productId']}/{action}", headers=user)
        anonymous = await shop.client.post(f"/api/v1/products/{created['productId']}/{action}")

        assert_error(forbidden, 403, "FORBIDDEN")
        assert_error(anonymous, 401, "UNAUTHORIZED")
        assert await snapshot(shop) == before

    async def test_the_api_alias_answers_the_same(self, shop: Shop) -> None:
        auth = await admin(shop)
        created = await new_product(shop, auth)

        response = await shop.client.post(f"/api/products/{created['productId']}/publish", headers=auth)

        assert response.status_code == 200
        assert response.json()["isActive"] is True


class TestUnpublish:
    async def test_hides_the_product_again(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)

        response = await shop.client.post(f"/api/v1/products/{product['productId']}/unpublish", headers=auth)

        assert response.status_code == 200
        body = response.json()
        assert body["isActive"] is False
        assert bool(await stored_product(shop, product["productId"], "is_active")) is False
        assert_error(await shop.client.get(f"/api/v1/products/{product['productId']}"), 404, "PRODUCT_NOT_FOUND")
        assert (await read_as_admin(shop, auth, product["productId"])) == body

    async def test_publishes_product_unpublished(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)

        response = await shop.client.post(f"/api/v1/products/{product['productId']}/unpublish", headers=auth)

        [payload] = await events(shop, "product.unpublished")
        assert payload["productId"] == product["productId"]
        assert payload["product"] == response.json()


class TestSoftDelete:
    async def test_hides_the_product_but_keeps_it(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)
        shop.clock.advance(minutes=5)

        response = await shop.client.delete(f"/api/v1/products/{product['productId']}", headers=auth)

        assert response.status_code == 204
        assert response.content == b""
        assert_error(await shop.client.get(f"/api/v1/products/{product['productId']}"), 404, "PRODUCT_NOT_FOUND")
        seen = await read_as_admin(shop, auth, product["productId"])
        assert datetime.fromisoformat(seen["deletedAt"]) == shop.clock.now()
        assert await stored_product(shop, product["productId"], "deleted_at") == shop.clock.now()
        assert await count(shop, "products") == 1
        assert await count(shop, "product_variants") == 1
        assert await count(shop, "product_images") == 1

    async def test_publishes_product_deleted(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)

        await shop.client.delete(f"/api/v1/products/{product['productId']}", headers=auth)

        [payload] = await events(shop, "product.deleted")
        assert payload["productId"] == product["productId"]
        assert payload["hard"] is False

    async def test_an_unknown_product_is_404(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.delete("/api/v1/products/p_doesnotexist", headers=auth)

        assert_error(response, 404, "PRODUCT_NOT_FOUND")
        assert await count(shop, "catalog_outbox_events") == 0

    @pytest.mark.parametrize("params", [{}, {"hard": "true"}])
    async def test_a_user_may_not_delete(self, shop: Shop, params: dict[str, str]) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)
        _, user = await shop.user()
        before = await snapshot(shop)

        forbidden = await shop.client.delete(f"/api/v1/products/{product['productId']}", params=params, headers=user)
        anonymous = await shop.client.delete(f"/api/v1/products/{product['productId']}", params=params)

        assert_error(forbidden, 403, "FORBIDDEN")
        assert_error(anonymous, 401, "UNAUTHORIZED")
        assert await snapshot(shop) == before


class TestHardDelete:
    async def test_removes_the_product_its_variants_and_images(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)
        other = await new_product(shop, auth, name="Mug", sku="MUG-1", variants=[{"sku": "MUG-1-A"}])

        response = await shop.client.delete(
            f"/api/v1/products/{product['productId']}", params={"hard": "true"}, headers=auth
        )

        assert response.status_code == 204
        assert_error(
            await shop.client.get(f"/api/v1/products/{product['productId']}", headers=auth), 404, "PRODUCT_NOT_FOUND"
        )
        assert await count(shop, "products") == 1
        assert await count(shop, "product_variants") == 1
        assert await count(shop, "product_images") == 1
        assert (await read_as_admin(shop, auth, other["productId"])) == other

    async def test_removes_a_soft_deleted_product(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        assert (await shop.client.delete(f"/api/v1/products/{product['productId']}", headers=auth)).status_code == 204

        response = await shop.client.delete(
            f"/api/v1/products/{product['productId']}", params={"hard": "true"}, headers=auth
        )

        assert response.status_code == 204
        assert await count(shop, "products") == 0

    async def test_publishes_product_deleted_hard(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)

        await shop.client.delete(f"/api/v1/products/{product['productId']}", params={"hard": "true"}, headers=auth)

        [payload] = await events(shop, "product.deleted")
        assert payload["productId"] == product["productId"]
        assert payload["hard"] is True

    async def test_the_api_alias_answers_the_same(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)

        response = await shop.client.delete(
            f"/api/products/{product['productId']}", params={"hard": "true"}, headers=auth
        )

        assert response.status_code == 204
        assert await count(shop, "products") == 0
