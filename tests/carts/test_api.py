"""The cart API of a signed-in user (SEED.md 5.3; DESIGN.md 5, Cart): show the cart, set a
line, remove a line; what each answers and what the store then holds. Guests, merging and
the stores' own behaviour have files of their own."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.carts.support import (
    ALIAS,
    CART_FIELDS,
    LINE_FIELDS,
    V1,
    admin_call,
    assert_error,
    cart,
    decimals,
    line,
    lines_of,
    product_for_sale,
    remove,
    reserve,
    set_item,
    set_ok,
    simple_product,
    snapshot,
    stored_carts,
    stored_lines,
    variant_id,
)
from tests.conftest import Shop

EMPTY = {"items": [], "itemCount": 0, "totalAmount": 0.0, "currency": "INR", "hasUnavailableItems": False}


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class TestShowCart:
    @pytest.mark.parametrize("base", [V1, ALIAS])
    async def test_anonymous_without_a_token_gets_an_empty_cart(self, shop: Shop, base: str) -> None:
        # when
        response = await shop.client.get(base)

        # then
        assert response.status_code == 200, response.text
        assert response.json() == {"cartId": None, "userId": None, **EMPTY}
        assert "X-Cart-Token" not in response.headers
        assert await stored_carts(shop) == {}

    @pytest.mark.parametrize("base", [V1, ALIAS])
    async def test_a_new_user_gets_an_empty_cart_of_their_own_and_nothing_is_stored(
        self, shop: Shop, base: str
    ) -> None:
        # given
        user_id, user = await shop.user()

        # when
        body = await cart(shop, user, base=base)

        # then
        assert body == {"cartId": None, "userId": user_id, **EMPTY}
        assert await stored_carts(shop) == {}

    @pytest.mark.parametrize("base", [V1, ALIAS])
    async def test_every_field_of_the_cart_and_its_lines(self, shop: Shop, base: str) -> None:
        # given a product with a SKU, an image and two variants, the second priced apart
        _, admin = await shop.admin()
        shirt = await product_for_sale(
            shop,
            admin,
            name="Men's T-Shirt",
            price=499,
            sku="TSHIRT",
            images=["https://cdn.example.com/p1.jpg"],
            variants=[
                {"sku": "TSHIRT-RED-M", "attributes": {"color": "red", "size": "M"}},
                {"sku": "TSHIRT-RED-L", "attributes": {"color": "red", "size": "L"}, "price": 549.5},
            ],
            stock=[37, 4],
        )
        user_id, user = await shop.user()
        added_at = shop.clock.now()
        await set_ok(shop, line(shirt, 2, 0), user)
        shop.clock.advance(seconds=1)
        await set_ok(shop, line(shirt, 3, 1), user)

        # when
        body = decimals(await shop.client.get(base, headers=user))

        # then
        [stored] = (await stored_carts(shop)).values()
        first, second = stored.lines
        assert set(body) == CART_FIELDS
        assert all(set(item) == LINE_FIELDS for item in body["items"])
        assert body == {
            "cartId": stored.cart_id,
            "userId": user_id,
            "items": [
                {
                    "itemId": first[0],
                    "productId": shirt["productId"],
                    "variantId": variant_id(shirt, 0),
                    "sku": "TSHIRT-RED-M",
                    "name": "Men's T-Shirt",
                    "attributes": {"color": "red", "size": "M"},
                    "image": "https://cdn.example.com/p1.jpg",
                    "quantity": 2,
                    "unitPrice": Decimal("499.0"),
                    "lineTotal": Decimal("998.0"),
                    "availableQuantity": 37,
                    "available": True,
                    "status": "AVAILABLE",
                    "addedAt": iso(added_at),
                },
                {
                    "itemId": second[0],
                    "productId": shirt["productId"],
                    "variantId": variant_id(shirt, 1),
                    "sku": "TSHIRT-RED-L",
                    "name": "Men's T-Shirt",
                    "attributes": {"color": "red", "size": "L"},
                    "image": "https://cdn.example.com/p1.jpg",
                    "quantity": 3,
                    "unitPrice": Decimal("549.5"),
                    "lineTotal": Decimal("1648.5"),
                    "availableQuantity": 4,
                    "available": True,
                    "status": "AVAILABLE",
                    "addedAt": iso(shop.clock.now()),
                },
            ],
            "itemCount": 5,
            "totalAmount": Decimal("2646.5"),
            "currency": "INR",
            "hasUnavailableItems": False,
        }
        assert stored.cart_id.startswith("c_")
        assert first[0].startswith("ci_")
        assert second[0].startswith("ci_")

    async def test_lines_are_shown_oldest_first_and_a_change_does_not_move_a_line(self, shop: Shop) -> None:
        # given three lines added a second apart, newest product first
        _, admin = await shop.admin()
        a, b, c = [await simple_product(shop, admin, name=name) for name in ("A", "B", "C")]
        _, user = await shop.user()
        for product in (c, a, b):
            await set_ok(shop, line(product, 1), user)
            shop.clock.advance(seconds=1)

        # when the oldest line changes
        answer = await set_ok(shop, line(c, 4), user)

        # then
        expected = [(c["productId"], None, 4), (a["productId"], None, 1), (b["productId"], None, 1)]
        assert lines_of(answer) == expected
        assert lines_of(await cart(shop, user)) == expected
        assert await stored_lines(shop, user_id=answer["userId"]) == expected

    async def test_lines_added_at_the_same_instant_keep_the_order_they_were_added_in(self, shop: Shop) -> None:
        # given (the clock does not move)
        _, admin = await shop.admin()
        products = [await simple_product(shop, admin, name=f"P{n}") for n in range(6)]
        _, user = await shop.user()

        # when
        for product in products:
            await set_ok(shop, line(product, 1), user)

        # then
        assert [i["productId"] for i in (await cart(shop, user))["items"]] == [p["productId"] for p in products]

    async def test_totals_are_exact_in_decimal(self, shop: Shop) -> None:
        # given prices that float arithmetic gets wrong
        _, admin = await shop.admin()
        a = await simple_product(shop, admin, name="A", price="333.33")
        b = await simple_product(shop, admin, name="B", price="0.1")
        c = await simple_product(shop, admin, name="C", price="0.01")
        _, user = await shop.user()
        await set_ok(shop, line(a, 3), user)
        await set_ok(shop, line(b, 3), user)
        await set_ok(shop, line(c, 7), user)

        # when
        body = decimals(await shop.client.get(V1, headers=user))

        # then
        assert [(i["unitPrice"], i["lineTotal"]) for i in body["items"]] == [
            (Decimal("333.33"), Decimal("999.99")),
            (Decimal("0.1"), Decimal("0.3")),
            (Decimal("0.01"), Decimal("0.07")),
        ]
        assert body["totalAmount"] == Decimal("1000.36")
        assert body["itemCount"] == 13


class TestSetLine:
    async def test_the_same_request_twice_sets_the_quantity_it_does_not_add(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin, stock=10)
        user_id, user = await shop.user()

        # when
        first = await set_ok(shop, line(shirt, 2), user)
        second = await set_ok(shop, line(shirt, 2), user)

        # then
        assert second == first
        assert lines_of(second) == [(shirt["productId"], variant_id(shirt), 2)]
        assert second["itemCount"] == 2
        assert second["totalAmount"] == 998.0
        assert await stored_lines(shop, user_id=user_id) == [(shirt["productId"], variant_id(shirt), 2)]

    async def test_a_new_quantity_replaces_the_old_on_the_same_line(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin, stock=10)
        user_id, user = await shop.user()
        before = await set_ok(shop, line(shirt, 2), user)

        # when
        after = await set_ok(shop, line(shirt, 7), user)

        # then
        assert [i["itemId"] for i in after["items"]] == [before["items"][0]["itemId"]]
        assert after["items"][0]["quantity"] == 7
        assert after["totalAmount"] == 7 * 499.0
        assert after["cartId"] == before["cartId"]
        assert await stored_lines(shop, user_id=user_id) == [(shirt["productId"], variant_id(shirt), 7)]

    async def test_each_variant_is_a_line_of_its_own(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        shirt = await product_for_sale(
            shop, admin, variants=[{"attributes": {"size": "M"}}, {"attributes": {"size": "L"}}], stock=[5, 5]
        )
        user_id, user = await shop.user()

        # when
        await set_ok(shop, line(shirt, 1, 0), user)
        answer = await set_ok(shop, line(shirt, 2, 1), user)

        # then
        expected = [(shirt["productId"], variant_id(shirt, 0), 1), (shirt["productId"], variant_id(shirt, 1), 2)]
        assert lines_of(answer) == expected
        assert await stored_lines(shop, user_id=user_id) == expected

    async def test_zero_removes_the_line(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin)
        mug = await simple_product(shop, admin)
        user_id, user = await shop.user()
        await set_ok(shop, line(shirt, 2), user)
        await set_ok(shop, line(mug, 1), user)

        # when
        answer = await set_ok(shop, line(shirt, 0), user)

        # then
        assert lines_of(answer) == [(mug["productId"], None, 1)]
        assert answer["totalAmount"] == 250.5
        assert await cart(shop, user) == answer
        assert await stored_lines(shop, user_id=user_id) == [(mug["productId"], None, 1)]

    async def test_zero_for_a_line_the_cart_does_not_have_answers_the_cart_as_it_is(self, shop: Shop) -> None:
        # given a user without a cart
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin)
        _, user = await shop.user()

        # when
        answer = await set_ok(shop, line(shirt, 0), user)

        # then the answer is what the cart shows from now on
        assert answer["items"] == []
        assert await cart(shop, user) == answer
        assert all(stored.lines == [] for stored in (await stored_carts(shop)).values())

    async def test_zero_for_a_product_that_no_longer_exists_removes_its_line(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin)
        user_id, user = await shop.user()
        await set_ok(shop, line(shirt, 2), user)
        await admin_call(shop, admin, "DELETE", f"/api/v1/products/{shirt['productId']}", params={"hard": "true"})

        # when
        answer = await set_ok(shop, line(shirt, 0), user)

        # then
        assert answer["items"] == []
        assert await stored_lines(shop, user_id=user_id) == []

    async def test_the_alias_path_sets_the_same_line(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin)
        user_id, user = await shop.user()

        # when
        response = await set_item(shop, line(shirt, 3), user, base=ALIAS)

        # then
        assert response.status_code == 200, response.text
        assert response.json() == await cart(shop, user, base=V1)
        assert await stored_lines(shop, user_id=user_id) == [(shirt["productId"], variant_id(shirt), 3)]

    async def test_up_to_99_units_of_a_line(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=150)
        user_id, user = await shop.user()

        # when
        answer = await set_ok(shop, line(mug, 99), user)

        # then
        assert lines_of(answer) == [(mug["productId"], None, 99)]
        assert await stored_lines(shop, user_id=user_id) == [(mug["productId"], None, 99)]


class TestSetLineRefused:
    """Each refusal answers the envelope and leaves the cart as it was."""

    @pytest.fixture
    async def given(self, shop: Shop) -> dict[str, Any]:
        """A user with one line in their cart, the clock moved on (so a touched row would show)."""
        _, admin = await shop.admin()
        shirt = await product_for_sale(
            shop, admin, variants=[{"attributes": {"size": "M"}}, {"attributes": {"size": "L"}}], stock=[10, 10]
        )
        mug = await simple_product(shop, admin, stock=150)
        user_id, user = await shop.user()
        await set_ok(shop, line(mug, 1), user)
        shop.clock.advance(seconds=30)
        return {
            "admin": admin,
            "shirt": shirt,
            "mug": mug,
            "user": user,
            "user_id": user_id,
            "before": await snapshot(shop),
            "cart": await cart(shop, user),
        }

    async def assert_unchanged(self, shop: Shop, given: dict[str, Any]) -> None:
        assert await snapshot(shop) == given["before"]
        assert await cart(shop, given["user"]) == given["cart"]

    async def test_more_than_in_stock_is_a_conflict(self, shop: Shop, given: dict[str, Any]) -> None:
        # when
        response = await set_item(shop, line(given["shirt"], 11), given["user"])

        # then
        body = assert_error(response, 409, "INSUFFICIENT_STOCK")
        assert body["message"] == "Only 10 in stock"
        assert body["details"] == [{"field": "body.quantity", "message": "asked 11, available 10"}]
        await self.assert_unchanged(shop, given)

    async def test_more_than_in_stock_of_a_line_already_there_is_a_conflict(
        self, shop: Shop, given: dict[str, Any]
    ) -> None:
        # given a reservation leaves 4 of the mug
        await reserve(shop, "ord_20261125_0001", given["mug"], 146)
        given["cart"] = await cart(shop, given["user"])

        # when
        response = await set_item(shop, line(given["mug"], 5), given["user"])

        # then
        assert_error(response, 409, "INSUFFICIENT_STOCK")
        await self.assert_unchanged(shop, given)

    async def test_a_product_never_stocked_is_out_of_stock(self, shop: Shop, given: dict[str, Any]) -> None:
        # given
        bare = await simple_product(shop, given["admin"], name="Bare", stock=0)

        # when
        response = await set_item(shop, line(bare, 1), given["user"])

        # then
        body = assert_error(response, 409, "INSUFFICIENT_STOCK")
        assert body["message"] == "Out of stock"
        await self.assert_unchanged(shop, given)

    async def test_100_units_is_over_the_limit_of_99(self, shop: Shop, given: dict[str, Any]) -> None:
        # when
        response = await set_item(shop, line(given["mug"], 100), given["user"])

        # then
        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert body["details"] == [{"field": "body.quantity", "message": "at most 99 per line"}]
        await self.assert_unchanged(shop, given)

    @pytest.mark.parametrize(
        "change",
        [
            pytest.param({"quantity": -1}, id="negative"),
            pytest.param({"quantity": 10**9}, id="10^9"),
            pytest.param({"quantity": 2.5}, id="fraction"),
            pytest.param({"quantity": "two"}, id="text"),
            pytest.param({"quantity": None}, id="null-quantity"),
            pytest.param({"quantity": ...}, id="missing-quantity"),
            pytest.param({"productId": ...}, id="missing-product"),
            pytest.param({"productId": ""}, id="empty-product"),
            pytest.param({"variantId": ""}, id="empty-variant"),
            pytest.param({"coupon": "FREE"}, id="unknown-field"),
        ],
    )
    async def test_a_malformed_body_is_a_validation_error(
        self, shop: Shop, given: dict[str, Any], change: dict[str, Any]
    ) -> None:
        # given a body for the mug (a line the cart has) with one field changed
        body = line(given["mug"], 3)
        for key, value in change.items():
            if value is ...:
                del body[key]
            else:
                body[key] = value

        # when
        response = await set_item(shop, body, given["user"])

        # then
        error = assert_error(response, 400, "VALIDATION_FAILED")
        assert [d["field"] for d in error["details"]] == [f"body.{next(iter(change))}"]
        await self.assert_unchanged(shop, given)

    @pytest.mark.parametrize("raw", ["{not json", "[]", ""])
    async def test_a_body_that_is_not_an_object_is_refused(self, shop: Shop, given: dict[str, Any], raw: str) -> None:
        # when
        response = await shop.client.post(
            f"{V1}/items", content=raw, headers={**given["user"], "Content-Type": "application/json"}
        )

        # then
        assert response.status_code == 400, response.text
        assert response.json()["code"] in {"MALFORMED_JSON", "VALIDATION_FAILED"}
        await self.assert_unchanged(shop, given)

    async def test_an_unknown_product_is_not_found(self, shop: Shop, given: dict[str, Any]) -> None:
        # when
        response = await set_item(shop, {"productId": "p_doesnotexist", "quantity": 1}, given["user"])

        # then
        assert_error(response, 404, "PRODUCT_NOT_FOUND")
        await self.assert_unchanged(shop, given)

    async def test_an_unpublished_product_is_not_found(self, shop: Shop, given: dict[str, Any]) -> None:
        # given a product stocked but never published
        draft = await product_for_sale(shop, given["admin"], name="Draft", publish=False)

        # when
        response = await set_item(shop, line(draft, 1), given["user"])

        # then
        assert_error(response, 404, "PRODUCT_NOT_FOUND")
        await self.assert_unchanged(shop, given)

    async def test_a_softly_deleted_product_is_not_found(self, shop: Shop, given: dict[str, Any]) -> None:
        # given
        await admin_call(shop, given["admin"], "DELETE", f"/api/v1/products/{given['shirt']['productId']}")

        # when
        response = await set_item(shop, line(given["shirt"], 1), given["user"])

        # then
        assert_error(response, 404, "PRODUCT_NOT_FOUND")
        await self.assert_unchanged(shop, given)

    async def test_a_product_with_variants_needs_a_variant(self, shop: Shop, given: dict[str, Any]) -> None:
        # when
        response = await set_item(shop, line(given["shirt"], 1, None), given["user"])

        # then
        assert_error(response, 400, "VARIANT_REQUIRED")
        await self.assert_unchanged(shop, given)

    @pytest.mark.parametrize("whose", ["unknown", "another-product", "product-without-variants"])
    async def test_a_variant_the_product_does_not_have_is_not_found(
        self, shop: Shop, given: dict[str, Any], whose: str
    ) -> None:
        # given
        other = await product_for_sale(shop, given["admin"], name="Other")
        target, variant = {
            "unknown": (given["shirt"], "v_doesnotexist"),
            "another-product": (given["shirt"], variant_id(other)),
            "product-without-variants": (given["mug"], variant_id(given["shirt"])),
        }[whose]

        # when
        response = await set_item(
            shop, {"productId": target["productId"], "variantId": variant, "quantity": 1}, given["user"]
        )

        # then
        assert_error(response, 404, "VARIANT_NOT_FOUND")
        await self.assert_unchanged(shop, given)

    async def test_a_line_of_an_unpublished_product_cannot_be_raised(self, shop: Shop, given: dict[str, Any]) -> None:
        # given the mug in the cart is unpublished since
        await admin_call(shop, given["admin"], "POST", f"/api/v1/products/{given['mug']['productId']}/unpublish")
        given["cart"] = await cart(shop, given["user"])

        # when
        response = await set_item(shop, line(given["mug"], 2), given["user"])

        # then
        assert_error(response, 404, "PRODUCT_NOT_FOUND")
        await self.assert_unchanged(shop, given)


class TestLineLimit:
    pytestmark = pytest.mark.parametrize("cart_settings", [{"cart_max_lines": 2}])

    async def test_a_new_line_past_the_limit_is_refused_but_lines_there_still_change(self, shop: Shop) -> None:
        # given a full cart
        _, admin = await shop.admin()
        a, b, c = [await simple_product(shop, admin, name=name) for name in ("A", "B", "C")]
        user_id, user = await shop.user()
        await set_ok(shop, line(a, 1), user)
        await set_ok(shop, line(b, 1), user)
        shop.clock.advance(seconds=5)
        before = await snapshot(shop)

        # when a third line is added
        refused = await set_item(shop, line(c, 1), user)

        # then
        assert_error(refused, 409, "CART_FULL")
        assert await snapshot(shop) == before

        # when a line there changes, and one goes to make room
        changed = await set_ok(shop, line(b, 4), user)
        await set_ok(shop, line(a, 0), user)
        room = await set_ok(shop, line(c, 2), user)

        # then
        assert lines_of(changed) == [(a["productId"], None, 1), (b["productId"], None, 4)]
        assert lines_of(room) == [(b["productId"], None, 4), (c["productId"], None, 2)]
        assert await stored_lines(shop, user_id=user_id) == lines_of(room)

    async def test_the_limit_is_per_cart(self, shop: Shop) -> None:
        # given one user's full cart
        _, admin = await shop.admin()
        a, b, c = [await simple_product(shop, admin, name=name) for name in ("A", "B", "C")]
        _, asha = await shop.user()
        await set_ok(shop, line(a, 1), asha)
        await set_ok(shop, line(b, 1), asha)

        # when another user fills theirs
        ravi_id, ravi = await shop.user("ravi@example.com")
        await set_ok(shop, line(c, 1), ravi)
        answer = await set_ok(shop, line(a, 1), ravi)

        # then
        assert lines_of(answer) == [(c["productId"], None, 1), (a["productId"], None, 1)]
        assert await stored_lines(shop, user_id=ravi_id) == lines_of(answer)


class TestQuantityLimitSetting:
    pytestmark = pytest.mark.parametrize("cart_settings", [{"cart_max_quantity": 5}])

    async def test_the_per_line_limit_comes_from_settings(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=50)
        user_id, user = await shop.user()
        await set_ok(shop, line(mug, 5), user)

        # when
        response = await set_item(shop, line(mug, 6), user)

        # then
        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert body["details"] == [{"field": "body.quantity", "message": "at most 5 per line"}]
        assert await stored_lines(shop, user_id=user_id) == [(mug["productId"], None, 5)]


class TestRemoveLine:
    @pytest.mark.parametrize("base", [V1, ALIAS])
    async def test_the_line_is_gone_and_the_others_stay(self, shop: Shop, base: str) -> None:
        # given
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin)
        mug = await simple_product(shop, admin)
        user_id, user = await shop.user()
        await set_ok(shop, line(shirt, 2), user)
        answer = await set_ok(shop, line(mug, 1), user)

        # when
        response = await remove(shop, answer["items"][0]["itemId"], user, base=base)

        # then
        assert response.status_code == 204, response.text
        assert response.content == b""
        assert lines_of(await cart(shop, user)) == [(mug["productId"], None, 1)]
        assert await stored_lines(shop, user_id=user_id) == [(mug["productId"], None, 1)]

    async def test_removing_the_last_line_leaves_an_empty_cart(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        user_id, user = await shop.user()
        answer = await set_ok(shop, line(mug, 1), user)

        # when
        response = await remove(shop, answer["items"][0]["itemId"], user)

        # then
        assert response.status_code == 204, response.text
        body = await cart(shop, user)
        assert (body["items"], body["totalAmount"], body["itemCount"]) == ([], 0.0, 0)
        assert await stored_lines(shop, user_id=user_id) == []

    async def test_a_line_twice_is_not_found_the_second_time(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        _, user = await shop.user()
        item_id = (await set_ok(shop, line(mug, 1), user))["items"][0]["itemId"]
        assert (await remove(shop, item_id, user)).status_code == 204

        # when
        response = await remove(shop, item_id, user)

        # then
        assert_error(response, 404, "CART_ITEM_NOT_FOUND")

    async def test_an_unknown_line_is_not_found_and_nothing_changes(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        _, user = await shop.user()
        await set_ok(shop, line(mug, 1), user)
        shop.clock.advance(seconds=5)
        before = await snapshot(shop)

        # when
        response = await remove(shop, "ci_doesnotexist", user)

        # then
        assert_error(response, 404, "CART_ITEM_NOT_FOUND")
        assert await snapshot(shop) == before

    async def test_another_users_line_is_not_found_and_their_cart_is_unchanged(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        asha_id, asha = await shop.user()
        theirs = (await set_ok(shop, line(mug, 2), asha))["items"][0]["itemId"]
        _, ravi = await shop.user("ravi@example.com")
        await set_ok(shop, line(mug, 1), ravi)
        shop.clock.advance(seconds=5)
        before = await snapshot(shop)

        # when
        response = await remove(shop, theirs, ravi)

        # then
        assert_error(response, 404, "CART_ITEM_NOT_FOUND")
        assert await snapshot(shop) == before
        assert await stored_lines(shop, user_id=asha_id) == [(mug["productId"], None, 2)]

    async def test_a_guests_line_is_not_found_for_a_user(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        guest = await set_item(shop, line(mug, 2))
        theirs = guest.json()["items"][0]["itemId"]
        _, user = await shop.user()
        before = await snapshot(shop)

        # when
        response = await remove(shop, theirs, user)

        # then
        assert_error(response, 404, "CART_ITEM_NOT_FOUND")
        assert await snapshot(shop) == before

    async def test_without_a_user_or_token_no_line_is_found(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        _, user = await shop.user()
        item_id = (await set_ok(shop, line(mug, 2), user))["items"][0]["itemId"]
        before = await snapshot(shop)

        # when
        response = await remove(shop, item_id)

        # then
        assert_error(response, 404, "CART_ITEM_NOT_FOUND")
        assert await snapshot(shop) == before


class TestAvailability:
    """Lines show today's catalog and stock: a line that cannot be bought as it is stays in
    the cart, flagged, and is left out of the total."""

    @pytest.fixture
    async def given(self, shop: Shop) -> dict[str, Any]:
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin, stock=10)
        mug = await simple_product(shop, admin, stock=10)
        user_id, user = await shop.user()
        await set_ok(shop, line(shirt, 2), user)
        await set_ok(shop, line(mug, 5), user)
        return {"admin": admin, "shirt": shirt, "mug": mug, "user": user, "user_id": user_id}

    @staticmethod
    def flags(body: dict[str, Any]) -> list[tuple[str, bool, int]]:
        return [(i["status"], i["available"], i["availableQuantity"]) for i in body["items"]]

    async def test_when_all_can_be_bought_nothing_is_flagged(self, shop: Shop, given: dict[str, Any]) -> None:
        # when
        body = await cart(shop, given["user"])

        # then
        assert self.flags(body) == [("AVAILABLE", True, 10), ("AVAILABLE", True, 10)]
        assert body["totalAmount"] == 2 * 499.0 + 5 * 250.5
        assert body["hasUnavailableItems"] is False

    async def test_an_unpublished_product_is_flagged_and_not_counted(self, shop: Shop, given: dict[str, Any]) -> None:
        # given
        await admin_call(shop, given["admin"], "POST", f"/api/v1/products/{given['shirt']['productId']}/unpublish")

        # when
        body = await cart(shop, given["user"])

        # then
        assert self.flags(body) == [("UNPUBLISHED", False, 10), ("AVAILABLE", True, 10)]
        shirt_line = body["items"][0]
        assert (shirt_line["name"], shirt_line["unitPrice"], shirt_line["lineTotal"]) == ("Men's T-Shirt", 499.0, 998.0)
        assert body["totalAmount"] == 5 * 250.5
        assert body["itemCount"] == 7
        assert body["hasUnavailableItems"] is True
        assert await stored_lines(shop, user_id=given["user_id"]) == lines_of(body)

        # when it is published again
        await admin_call(shop, given["admin"], "POST", f"/api/v1/products/{given['shirt']['productId']}/publish")

        # then
        again = await cart(shop, given["user"])
        assert self.flags(again) == [("AVAILABLE", True, 10), ("AVAILABLE", True, 10)]
        assert again["totalAmount"] == 2 * 499.0 + 5 * 250.5

    async def test_a_softly_deleted_product_is_flagged_unpublished(self, shop: Shop, given: dict[str, Any]) -> None:
        # given
        await admin_call(shop, given["admin"], "DELETE", f"/api/v1/products/{given['mug']['productId']}")

        # when
        body = await cart(shop, given["user"])

        # then
        assert self.flags(body) == [("AVAILABLE", True, 10), ("UNPUBLISHED", False, 10)]
        assert body["totalAmount"] == 998.0
        assert body["hasUnavailableItems"] is True

    async def test_a_product_with_nothing_left_is_out_of_stock(self, shop: Shop, given: dict[str, Any]) -> None:
        # given every unit of the mug is reserved
        await reserve(shop, "ord_20261125_0001", given["mug"], 10)

        # when
        body = await cart(shop, given["user"])

        # then
        assert self.flags(body) == [("AVAILABLE", True, 10), ("OUT_OF_STOCK", False, 0)]
        assert body["items"][1]["lineTotal"] == 5 * 250.5
        assert body["totalAmount"] == 998.0
        assert body["hasUnavailableItems"] is True

    async def test_fewer_in_stock_than_the_line_wants_is_flagged(self, shop: Shop, given: dict[str, Any]) -> None:
        # given 3 of the mug are left, the line wants 5
        await reserve(shop, "ord_20261125_0001", given["mug"], 7)

        # when
        body = await cart(shop, given["user"])

        # then
        assert self.flags(body) == [("AVAILABLE", True, 10), ("INSUFFICIENT_STOCK", False, 3)]
        assert body["totalAmount"] == 998.0

        # when the line is lowered to what is left
        lowered = await set_ok(shop, line(given["mug"], 3), given["user"])

        # then
        assert self.flags(lowered) == [("AVAILABLE", True, 10), ("AVAILABLE", True, 3)]
        assert lowered["totalAmount"] == 998.0 + 3 * 250.5

    @pytest.mark.parametrize("base", [V1, ALIAS])
    async def test_a_product_deleted_for_good_does_not_break_the_cart(
        self, shop: Shop, given: dict[str, Any], base: str
    ) -> None:
        # given
        shirt = given["shirt"]
        await admin_call(
            shop, given["admin"], "DELETE", f"/api/v1/products/{shirt['productId']}", params={"hard": "true"}
        )

        # when
        body = await cart(shop, given["user"], base=base)

        # then
        gone = body["items"][0]
        assert gone == {
            "itemId": gone["itemId"],
            "productId": shirt["productId"],
            "variantId": variant_id(shirt),
            "sku": None,
            "name": None,
            "attributes": {},
            "image": None,
            "quantity": 2,
            "unitPrice": None,
            "lineTotal": 0.0,
            "availableQuantity": gone["availableQuantity"],
            "available": False,
            "status": "UNAVAILABLE",
            "addedAt": gone["addedAt"],
        }
        assert body["items"][1]["status"] == "AVAILABLE"
        assert body["totalAmount"] == 5 * 250.5
        assert body["hasUnavailableItems"] is True

        # when the line is removed by its id
        response = await remove(shop, gone["itemId"], given["user"], base=base)

        # then
        assert response.status_code == 204, response.text
        assert await stored_lines(shop, user_id=given["user_id"]) == [(given["mug"]["productId"], None, 5)]

    async def test_a_variant_removed_from_the_product_is_flagged_unavailable(
        self, shop: Shop, given: dict[str, Any]
    ) -> None:
        # given the shirt's variant is replaced by another
        shirt = given["shirt"]
        await admin_call(
            shop,
            given["admin"],
            "PUT",
            f"/api/v1/products/{shirt['productId']}",
            json={"variants": [{"attributes": {"color": "blue", "size": "M"}}]},
        )

        # when
        body = await cart(shop, given["user"])

        # then
        assert (body["items"][0]["status"], body["items"][0]["available"]) == ("UNAVAILABLE", False)
        assert body["totalAmount"] == 5 * 250.5

    async def test_a_new_price_shows_at_once(self, shop: Shop, given: dict[str, Any]) -> None:
        # given both products get new prices (the shirt's variant follows the product's)
        await admin_call(
            shop, given["admin"], "PUT", f"/api/v1/products/{given['shirt']['productId']}", json={"price": 450.25}
        )
        await admin_call(
            shop, given["admin"], "PUT", f"/api/v1/products/{given['mug']['productId']}", json={"price": 199}
        )

        # when
        body = decimals(await shop.client.get(V1, headers=given["user"]))

        # then
        assert [(i["unitPrice"], i["lineTotal"]) for i in body["items"]] == [
            (Decimal("450.25"), Decimal("900.5")),
            (Decimal("199.0"), Decimal("995.0")),
        ]
        assert body["totalAmount"] == Decimal("1895.5")
        assert await stored_lines(shop, user_id=given["user_id"]) == lines_of(body)

    async def test_a_variants_own_new_price_shows_at_once(self, shop: Shop, given: dict[str, Any]) -> None:
        # given
        shirt = given["shirt"]
        await admin_call(
            shop,
            given["admin"],
            "PUT",
            f"/api/v1/products/{shirt['productId']}",
            json={"variants": [{"variantId": variant_id(shirt), "price": 525}]},
        )

        # when
        body = await cart(shop, given["user"])

        # then
        assert (body["items"][0]["unitPrice"], body["items"][0]["lineTotal"]) == (525.0, 1050.0)
        assert body["totalAmount"] == 1050.0 + 5 * 250.5
