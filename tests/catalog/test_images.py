"""Adding an image to a product by URL: last by default, first (primary) at position 0,
at most 20 per product."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.catalog.support import (
    IMAGE_FIELDS,
    IMG1,
    IMG2,
    IMG3,
    admin,
    count,
    events,
    new_product,
    read_as_admin,
    snapshot,
    stored_images,
)
from tests.conftest import Shop
from tests.users.support import assert_error, fields

NEW = "https://cdn.example.com/new.jpg"


def _url(product_id: str) -> str:
    return f"/api/v1/products/{product_id}/images"


class TestAddImage:
    async def test_without_a_position_it_goes_last(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[IMG1, IMG2])

        response = await shop.client.post(
            _url(product["productId"]), json={"url": NEW, "altText": "Side"}, headers=auth
        )

        assert response.status_code == 201
        body = response.json()
        assert set(body) == IMAGE_FIELDS
        assert body == {"url": NEW, "altText": "Side", "position": 2, "isPrimary": False}
        assert (await read_as_admin(shop, auth, product["productId"]))["images"] == [IMG1, IMG2, NEW]
        assert await stored_images(shop, product["productId"]) == [
            (IMG1, None, True),
            (IMG2, None, False),
            (NEW, "Side", False),
        ]

    async def test_the_first_image_of_a_product_is_the_primary(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[])

        response = await shop.client.post(_url(product["productId"]), json={"url": NEW}, headers=auth)

        assert response.status_code == 201
        assert response.json() == {"url": NEW, "altText": None, "position": 0, "isPrimary": True}
        assert (await read_as_admin(shop, auth, product["productId"]))["images"] == [NEW]

    async def test_position_0_makes_it_the_primary_image(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[IMG1, IMG2])

        response = await shop.client.post(_url(product["productId"]), json={"url": NEW, "position": 0}, headers=auth)

        assert response.status_code == 201
        assert response.json() == {"url": NEW, "altText": None, "position": 0, "isPrimary": True}
        assert (await read_as_admin(shop, auth, product["productId"]))["images"] == [NEW, IMG1, IMG2]
        assert await stored_images(shop, product["productId"]) == [
            (NEW, None, True),
            (IMG1, None, False),
            (IMG2, None, False),
        ]

    async def test_a_position_in_the_middle_inserts_it_there(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[IMG1, IMG2, IMG3])

        response = await shop.client.post(_url(product["productId"]), json={"url": NEW, "position": 1}, headers=auth)

        assert response.status_code == 201
        assert response.json() == {"url": NEW, "altText": None, "position": 1, "isPrimary": False}
        assert (await read_as_admin(shop, auth, product["productId"]))["images"] == [IMG1, NEW, IMG2, IMG3]

    async def test_publishes_product_updated(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)

        await shop.client.post(_url(product["productId"]), json={"url": NEW}, headers=auth)

        [payload] = await events(shop, "product.updated")
        assert payload["productId"] == product["productId"]
        assert payload["product"] == await read_as_admin(shop, auth, product["productId"])
        assert payload["product"]["images"] == [*product["images"], NEW]

    async def test_a_twenty_first_image_is_refused(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[f"https://cdn.example.com/{n}.jpg" for n in range(20)])
        before = await snapshot(shop)

        response = await shop.client.post(_url(product["productId"]), json={"url": NEW}, headers=auth)

        assert_error(response, 409, "IMAGE_LIMIT", error="Conflict")
        assert await snapshot(shop) == before

    async def test_concurrent_adds_never_pass_twenty(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[f"https://cdn.example.com/{n}.jpg" for n in range(18)])

        responses = await asyncio.gather(
            *(
                shop.client.post(
                    _url(product["productId"]), json={"url": f"https://cdn.example.com/x{n}.jpg"}, headers=auth
                )
                for n in range(4)
            )
        )

        assert sorted(r.status_code for r in responses) == [201, 201, 409, 409]
        assert await count(shop, "product_images") == 20
        assert len((await read_as_admin(shop, auth, product["productId"]))["images"]) == 20

    async def test_an_unknown_product_is_404(self, shop: Shop) -> None:
        auth = await admin(shop)

        response = await shop.client.post(_url("p_doesnotexist"), json={"url": NEW}, headers=auth)

        assert_error(response, 404, "PRODUCT_NOT_FOUND")
        assert await count(shop, "product_images") == 0

    @pytest.mark.parametrize(
        ("body", "bad"),
        [
            ({}, ["body.url"]),
            ({"url": "ftp://x/y.jpg"}, ["body.url"]),
            ({"url": "javascript:alert(1)"}, ["body.url"]),
            ({"url": "https://cdn.example.com/a b.jpg"}, ["body.url"]),
            ({"url": NEW, "position": -1}, ["body.position"]),
            ({"url": NEW, "altText": "x" * 256}, ["body.altText"]),
            ({"url": NEW, "isPrimary": True}, ["body.isPrimary"]),
        ],
    )
    async def test_bad_input_is_refused_and_nothing_stored(
        self, shop: Shop, body: dict[str, Any], bad: list[str]
    ) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        before = await snapshot(shop)

        response = await shop.client.post(_url(product["productId"]), json=body, headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == bad
        assert await snapshot(shop) == before

    async def test_a_user_may_not_add_one(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        _, user = await shop.user()
        before = await snapshot(shop)

        forbidden = await shop.client.post(_url(product["productId"]), json={"url": NEW}, headers=user)
        anonymous = await shop.client.post(_url(product["productId"]), json={"url": NEW})

        assert_error(forbidden, 403, "FORBIDDEN")
        assert_error(anonymous, 401, "UNAUTHORIZED")
        assert await snapshot(shop) == before

    async def test_the_api_alias_answers_the_same(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth, images=[])

        response = await shop.client.post(
            f"/api/products/{product['productId']}/images", json={"url": NEW}, headers=auth
        )

        assert response.status_code == 201
        assert (await read_as_admin(shop, auth, product["productId"]))["images"] == [NEW]
