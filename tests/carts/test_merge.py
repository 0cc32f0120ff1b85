"""Merging a guest's cart into the user's on sign-in (DESIGN.md 5, Cart): quantities of the
same item add up, capped by stock (and the per-line limit); the guest's other lines move over;
the guest cart is gone after, so merging again changes nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.carts.support import (
    ALIAS,
    TOKEN,
    V1,
    admin_call,
    assert_error,
    cart,
    decimals,
    guest_cart_id,
    guest_line,
    line,
    lines_of,
    merge,
    product_for_sale,
    reserve,
    set_ok,
    simple_product,
    snapshot,
    stored_carts,
    stored_lines,
    variant_id,
)
from tests.conftest import Shop


class TestDoneMeans:
    async def test_guest_adds_three_lines_signs_in_merges_and_sees_todays_prices(self, shop: Shop) -> None:
        # given a user who put 4 shirts (of 5 in stock) and 3 caps in their cart last week
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin, name="Shirt", price=499, stock=5)
        mug = await simple_product(shop, admin, name="Mug", price=250.5, stock=3)
        cap = await simple_product(shop, admin, name="Cap", price=199.99, stock=10)
        user_id, user = await shop.user()
        await set_ok(shop, line(shirt, 4), user)
        await set_ok(shop, line(cap, 3), user)
        shop.clock.advance(days=7)

        # and, signed out, three lines as a guest
        token, _ = await guest_line(shop, line(shirt, 2))
        guest = {TOKEN: token}
        shop.clock.advance(seconds=1)
        await set_ok(shop, line(mug, 2), guest)
        shop.clock.advance(seconds=1)
        await set_ok(shop, line(cap, 4), guest)
        guest_id = guest_cart_id(shop, token)

        # when they sign in and merge
        user = {"Authorization": f"Bearer {(await shop.login())['accessToken']}"}
        response = await merge(shop, user, {"cartToken": token})

        # then one cart: shirts 4 + 2 capped at the 5 in stock, caps 3 + 4, the mugs moved over
        assert response.status_code == 200, response.text
        body = decimals(response)
        expected = [
            (shirt["productId"], variant_id(shirt), 5),
            (cap["productId"], None, 7),
            (mug["productId"], None, 2),
        ]
        assert body["userId"] == user_id
        assert lines_of(body) == expected
        assert [i["status"] for i in body["items"]] == ["AVAILABLE"] * 3
        assert body["totalAmount"] == Decimal("5") * 499 + Decimal("7") * Decimal("199.99") + 2 * Decimal("250.5")
        assert await cart(shop, user) == response.json()
        assert list(await stored_carts(shop)) == [user_id]
        assert await stored_lines(shop, user_id=user_id) == expected

        # and the guest's cart is gone
        assert await stored_lines(shop, guest=guest_id) is None
        assert (await cart(shop, guest))["items"] == []

        # when the catalog changes the shirt's price
        admin = {"Authorization": f"Bearer {(await shop.login('root@example.com', 'Adm1n-pass'))['accessToken']}"}
        await admin_call(shop, admin, "PUT", f"/api/v1/products/{shirt['productId']}", json={"price": 459.5})

        # then the cart shows the new price
        again = decimals(await shop.client.get(V1, headers=user))
        assert (again["items"][0]["unitPrice"], again["items"][0]["lineTotal"]) == (Decimal("459.5"), Decimal("2297.5"))
        assert again["totalAmount"] == Decimal("2297.5") + Decimal("1399.93") + Decimal("501.0")


class TestMerge:
    @pytest.fixture
    async def given(self, shop: Shop) -> dict[str, Any]:
        """A guest with two lines; a signed-in user with one of the same item."""
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin, stock=10)
        mug = await simple_product(shop, admin, stock=10)
        user_id, user = await shop.user()
        await set_ok(shop, line(shirt, 1), user)
        shop.clock.advance(seconds=1)
        token, _ = await guest_line(shop, line(shirt, 2))
        shop.clock.advance(seconds=1)
        await set_ok(shop, line(mug, 3), {TOKEN: token})
        return {"admin": admin, "shirt": shirt, "mug": mug, "user_id": user_id, "user": user, "token": token}

    @staticmethod
    def merged(given: dict[str, Any]) -> list[tuple[str, str | None, int]]:
        return [(given["shirt"]["productId"], variant_id(given["shirt"]), 3), (given["mug"]["productId"], None, 3)]

    async def test_merging_twice_changes_nothing_the_second_time(self, shop: Shop, given: dict[str, Any]) -> None:
        # given
        first = await merge(shop, given["user"], {"cartToken": given["token"]})
        assert first.status_code == 200, first.text
        before = await snapshot(shop)

        # when
        second = await merge(shop, given["user"], {"cartToken": given["token"]})

        # then
        assert second.status_code == 200, second.text
        assert second.json() == first.json()
        assert lines_of(second.json()) == self.merged(given)
        assert await snapshot(shop) == before

    @pytest.mark.parametrize("base", [V1, ALIAS])
    async def test_the_token_may_come_in_the_header(self, shop: Shop, given: dict[str, Any], base: str) -> None:
        # when
        response = await merge(shop, {**given["user"], TOKEN: given["token"]}, base=base)

        # then
        assert response.status_code == 200, response.text
        assert lines_of(response.json()) == self.merged(given)
        assert await stored_lines(shop, user_id=given["user_id"]) == self.merged(given)
        assert await stored_lines(shop, guest=guest_cart_id(shop, given["token"])) is None

    async def test_into_a_user_without_a_cart_the_guests_lines_move_over_in_order(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        a, b, c = [await simple_product(shop, admin, name=name) for name in ("A", "B", "C")]
        token, _ = await guest_line(shop, line(b, 1))
        for product, quantity in ((c, 2), (a, 3)):
            shop.clock.advance(seconds=1)
            await set_ok(shop, line(product, quantity), {TOKEN: token})
        user_id, user = await shop.user()

        # when
        response = await merge(shop, user, {"cartToken": token})

        # then
        expected = [(b["productId"], None, 1), (c["productId"], None, 2), (a["productId"], None, 3)]
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["userId"], lines_of(body)) == (user_id, expected)
        assert body["cartId"] not in (None, guest_cart_id(shop, token))
        assert await cart(shop, user) == body
        assert list(await stored_carts(shop)) == [user_id]
        assert await stored_lines(shop, user_id=user_id) == expected

    async def test_an_empty_guest_cart_changes_nothing_but_goes(self, shop: Shop, given: dict[str, Any]) -> None:
        # given the guest emptied their cart
        guest = {TOKEN: given["token"]}
        for item in (await cart(shop, guest))["items"]:
            await set_ok(shop, {"productId": item["productId"], "variantId": item["variantId"], "quantity": 0}, guest)
        mine = await cart(shop, given["user"])

        # when
        response = await merge(shop, given["user"], {"cartToken": given["token"]})

        # then
        assert response.status_code == 200, response.text
        assert response.json() == mine
        assert list(await stored_carts(shop)) == [given["user_id"]]

    async def test_the_sum_is_capped_at_99_per_line(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=500)
        user_id, user = await shop.user()
        await set_ok(shop, line(mug, 60), user)
        token, _ = await guest_line(shop, line(mug, 50))

        # when
        response = await merge(shop, user, {"cartToken": token})

        # then
        assert response.status_code == 200, response.text
        assert lines_of(response.json()) == [(mug["productId"], None, 99)]
        assert await stored_lines(shop, user_id=user_id) == [(mug["productId"], None, 99)]

    async def test_a_user_keeps_what_they_had_even_when_stock_fell_below_it(self, shop: Shop) -> None:
        # given the user wants 5 mugs, then stock falls to 3
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=10)
        user_id, user = await shop.user()
        await set_ok(shop, line(mug, 5), user)
        token, _ = await guest_line(shop, line(mug, 2))
        await reserve(shop, "ord_20261125_0001", mug, 7)

        # when
        response = await merge(shop, user, {"cartToken": token})

        # then the line neither grows nor shrinks, and shows it is short
        assert response.status_code == 200, response.text
        [item] = response.json()["items"]
        assert (item["quantity"], item["status"], item["availableQuantity"]) == (5, "INSUFFICIENT_STOCK", 3)
        assert await stored_lines(shop, user_id=user_id) == [(mug["productId"], None, 5)]

    async def test_a_guest_line_out_of_stock_moves_over_flagged(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=4)
        user_id, user = await shop.user()
        token, _ = await guest_line(shop, line(mug, 2))
        await reserve(shop, "ord_20261125_0001", mug, 4)

        # when
        response = await merge(shop, user, {"cartToken": token})

        # then
        assert response.status_code == 200, response.text
        [item] = response.json()["items"]
        assert (item["quantity"], item["status"], item["available"]) == (2, "OUT_OF_STOCK", False)
        assert response.json()["totalAmount"] == 0.0
        assert await stored_lines(shop, user_id=user_id) == [(mug["productId"], None, 2)]

    async def test_a_guest_line_of_a_product_deleted_since_moves_over_flagged(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        user_id, user = await shop.user()
        token, _ = await guest_line(shop, line(mug, 2))
        await admin_call(shop, admin, "DELETE", f"/api/v1/products/{mug['productId']}", params={"hard": "true"})

        # when
        response = await merge(shop, user, {"cartToken": token})

        # then
        assert response.status_code == 200, response.text
        [item] = response.json()["items"]
        assert (item["quantity"], item["status"], item["name"], item["unitPrice"]) == (2, "UNAVAILABLE", None, None)
        assert await stored_lines(shop, user_id=user_id) == [(mug["productId"], None, 2)]


class TestMergeLineLimit:
    pytestmark = pytest.mark.parametrize("cart_settings", [{"cart_max_lines": 2}])

    async def test_into_a_full_cart_lines_there_add_up_and_new_ones_stay_behind(self, shop: Shop) -> None:
        # given a user's full cart; a guest with one of its items and another
        _, admin = await shop.admin()
        a, b, c = [await simple_product(shop, admin, name=name) for name in ("A", "B", "C")]
        user_id, user = await shop.user()
        await set_ok(shop, line(a, 1), user)
        await set_ok(shop, line(b, 1), user)
        token, _ = await guest_line(shop, line(c, 1))
        await set_ok(shop, line(b, 2), {TOKEN: token})

        # when
        response = await merge(shop, user, {"cartToken": token})

        # then
        expected = [(a["productId"], None, 1), (b["productId"], None, 3)]
        assert response.status_code == 200, response.text
        assert lines_of(response.json()) == expected
        assert await stored_lines(shop, user_id=user_id) == expected
        assert list(await stored_carts(shop)) == [user_id]

    async def test_new_lines_move_over_oldest_first_while_there_is_room(self, shop: Shop) -> None:
        # given a user with one line; a guest with two others
        _, admin = await shop.admin()
        a, b, c = [await simple_product(shop, admin, name=name) for name in ("A", "B", "C")]
        user_id, user = await shop.user()
        await set_ok(shop, line(a, 1), user)
        shop.clock.advance(seconds=1)
        token, _ = await guest_line(shop, line(c, 1))
        shop.clock.advance(seconds=1)
        await set_ok(shop, line(b, 1), {TOKEN: token})

        # when
        response = await merge(shop, user, {"cartToken": token})

        # then the cart is full with the guest's older line; the guest cart is gone all the same
        expected = [(a["productId"], None, 1), (c["productId"], None, 1)]
        assert response.status_code == 200, response.text
        assert lines_of(response.json()) == expected
        assert await stored_lines(shop, user_id=user_id) == expected
        assert list(await stored_carts(shop)) == [user_id]


class TestMergeRefused:
    @pytest.fixture
    async def given(self, shop: Shop) -> dict[str, Any]:
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin)
        token, _ = await guest_line(shop, line(shirt, 2))
        _, user = await shop.user()
        await set_ok(shop, line(shirt, 1), user)
        shop.clock.advance(seconds=5)
        return {"token": token, "user": user, "before": await snapshot(shop)}

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            (None, "CART_TOKEN_REQUIRED"),
            ({}, "CART_TOKEN_REQUIRED"),
            ({"cartToken": None}, "CART_TOKEN_REQUIRED"),
            ({"cartToken": ""}, "VALIDATION_FAILED"),
        ],
        ids=["no-body", "empty", "null", "blank"],
    )
    async def test_without_a_token_it_is_a_bad_request(
        self, shop: Shop, given: dict[str, Any], body: dict[str, Any] | None, code: str
    ) -> None:
        # when
        response = await merge(shop, given["user"], body)

        # then
        assert_error(response, 400, code)
        assert await snapshot(shop) == given["before"]

    async def test_an_unknown_field_is_a_validation_error(self, shop: Shop, given: dict[str, Any]) -> None:
        # when
        response = await merge(shop, given["user"], {"cartToken": given["token"], "cartId": "c_x"})

        # then
        assert_error(response, 400, "VALIDATION_FAILED")
        assert await snapshot(shop) == given["before"]

    @pytest.mark.parametrize("base", [V1, ALIAS])
    async def test_without_signing_in_it_is_unauthorized(self, shop: Shop, given: dict[str, Any], base: str) -> None:
        # when
        response = await merge(shop, {TOKEN: given["token"]}, {"cartToken": given["token"]}, base=base)

        # then
        assert_error(response, 401, "UNAUTHORIZED")
        assert await snapshot(shop) == given["before"]
