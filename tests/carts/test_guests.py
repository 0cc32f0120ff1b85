"""Guests' carts (DESIGN.md 5, Cart): a guest's first write starts a cart and answers its
token in `X-Cart-Token`; the token is the guest's key to it until they sign in, and a token we
did not issue, or one past its time, is refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest

from tests.carts.support import (
    TOKEN,
    V1,
    assert_error,
    cart,
    guest_cart_id,
    guest_line,
    line,
    lines_of,
    merge,
    owner_key,
    product_for_sale,
    remove,
    set_item,
    set_ok,
    simple_product,
    snapshot,
    stored_carts,
    stored_lines,
    variant_id,
)
from tests.conftest import Shop


class TestFirstWrite:
    async def test_a_guests_first_write_starts_a_cart_and_answers_its_token(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin)

        # when
        response = await set_item(shop, line(shirt, 2))

        # then
        assert response.status_code == 200, response.text
        token = response.headers[TOKEN]
        cart_id = guest_cart_id(shop, token)
        body = response.json()
        assert cart_id.startswith("c_")
        assert (body["cartId"], body["userId"]) == (cart_id, None)
        assert lines_of(body) == [(shirt["productId"], variant_id(shirt), 2)]
        assert body["totalAmount"] == 998.0
        assert list(await stored_carts(shop)) == [owner_key(guest=cart_id)]
        assert await stored_lines(shop, guest=cart_id) == [(shirt["productId"], variant_id(shirt), 2)]

    async def test_the_token_reaches_the_cart_for_every_request(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin)
        mug = await simple_product(shop, admin)
        token, first = await guest_line(shop, line(shirt, 2))
        guest = {TOKEN: token}

        # when a second line is added, the cart read and the first line removed, all with the token
        second = await set_item(shop, line(mug, 1), guest)
        shown = await cart(shop, guest)
        removed = await remove(shop, first["items"][0]["itemId"], guest)

        # then it is one cart throughout
        assert second.status_code == 200, second.text
        assert guest_cart_id(shop, second.headers[TOKEN]) == guest_cart_id(shop, token)
        assert second.json()["cartId"] == first["cartId"]
        assert shown == second.json()
        assert lines_of(shown) == [(shirt["productId"], variant_id(shirt), 2), (mug["productId"], None, 1)]
        assert removed.status_code == 204, removed.text
        assert lines_of(await cart(shop, guest)) == [(mug["productId"], None, 1)]
        assert list(await stored_carts(shop)) == [owner_key(guest=first["cartId"])]
        assert await stored_lines(shop, guest=first["cartId"]) == [(mug["productId"], None, 1)]

    async def test_a_read_without_a_token_gives_no_token(self, shop: Shop) -> None:
        # when
        response = await shop.client.get(V1)

        # then
        assert response.status_code == 200
        assert TOKEN not in response.headers

    async def test_two_guests_have_carts_of_their_own(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin)
        mug = await simple_product(shop, admin)

        # when
        one, _ = await guest_line(shop, line(shirt, 1))
        two, _ = await guest_line(shop, line(mug, 3))

        # then
        assert guest_cart_id(shop, one) != guest_cart_id(shop, two)
        assert lines_of(await cart(shop, {TOKEN: one})) == [(shirt["productId"], variant_id(shirt), 1)]
        assert lines_of(await cart(shop, {TOKEN: two})) == [(mug["productId"], None, 3)]
        assert len(await stored_carts(shop)) == 2

    async def test_a_guest_refused_on_the_first_write_gets_no_token_and_no_cart(self, shop: Shop) -> None:
        # when
        response = await set_item(shop, {"productId": "p_doesnotexist", "quantity": 1})

        # then
        assert_error(response, 404, "PRODUCT_NOT_FOUND")
        assert TOKEN not in response.headers
        assert await stored_carts(shop) == {}


def _forge(shop: Shop, kind: str, real: str, access: str) -> str:
    if kind == "random":
        return "not-a-cart-token"
    if kind == "altered-signature":
        head, payload, signature = real.split(".")
        return f"{head}.{payload}.{signature[:-4]}{'AAAA' if not signature.endswith('AAAA') else 'BBBB'}"
    if kind == "altered-payload":
        head, payload, signature = real.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["sub"] = "c_someoneelses"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"{head}.{forged}.{signature}"
    if kind == "access-token":
        return access
    if kind == "other-kind":  # signed by the shop, but not as a cart token
        return shop.platform.tokens.sign("password-reset", guest_cart_id(shop, real), ttl_seconds=3600)[0]
    if kind == "other-key":
        claims = jwt.decode(real, options={"verify_signature": False})
        return jwt.encode(claims, "another-secret-that-is-long-enough-for-hs256", algorithm="HS256")
    if kind == "unsigned":
        claims = jwt.decode(real, options={"verify_signature": False})
        return jwt.encode(claims, None, algorithm="none")
    raise AssertionError(kind)


FORGERIES = ["random", "altered-signature", "altered-payload", "access-token", "other-kind", "other-key", "unsigned"]


class TestForgedToken:
    """A token the shop did not issue as a cart token: 401 CART_TOKEN_INVALID, nothing changed."""

    @pytest.fixture
    async def given(self, shop: Shop, request: pytest.FixtureRequest) -> dict[str, Any]:
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin)
        token, answer = await guest_line(shop, line(shirt, 2))
        _, user = await shop.user()
        await set_ok(shop, line(shirt, 1), user)
        shop.clock.advance(seconds=5)
        return {
            "shirt": shirt,
            "token": token,
            "item_id": answer["items"][0]["itemId"],
            "user": user,
            "forged": {TOKEN: _forge(shop, request.param, token, user["Authorization"].removeprefix("Bearer "))},
            "before": await snapshot(shop),
        }

    @pytest.mark.parametrize("given", FORGERIES, indirect=True)
    async def test_reading_the_cart(self, shop: Shop, given: dict[str, Any]) -> None:
        response = await shop.client.get(V1, headers=given["forged"])

        assert_error(response, 401, "CART_TOKEN_INVALID")
        assert await snapshot(shop) == given["before"]

    @pytest.mark.parametrize("given", FORGERIES, indirect=True)
    async def test_setting_a_line(self, shop: Shop, given: dict[str, Any]) -> None:
        response = await set_item(shop, line(given["shirt"], 5), given["forged"])

        assert_error(response, 401, "CART_TOKEN_INVALID")
        assert TOKEN not in response.headers
        assert await snapshot(shop) == given["before"]

    @pytest.mark.parametrize("given", FORGERIES, indirect=True)
    async def test_removing_a_line(self, shop: Shop, given: dict[str, Any]) -> None:
        response = await remove(shop, given["item_id"], given["forged"])

        assert_error(response, 401, "CART_TOKEN_INVALID")
        assert await snapshot(shop) == given["before"]

    @pytest.mark.parametrize("given", FORGERIES, indirect=True)
    async def test_merging(self, shop: Shop, given: dict[str, Any]) -> None:
        response = await merge(shop, given["user"], {"cartToken": given["forged"][TOKEN]})

        assert_error(response, 401, "CART_TOKEN_INVALID")
        assert await snapshot(shop) == given["before"]


class TestExpiredToken:
    """A guest's cart and token last `guest_cart_ttl_seconds` after the last write."""

    pytestmark = pytest.mark.parametrize("cart_settings", [{"guest_cart_ttl_seconds": 3600}])

    @pytest.fixture
    async def given(self, shop: Shop) -> dict[str, Any]:
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin)
        token, answer = await guest_line(shop, line(shirt, 2))
        _, user = await shop.user()
        return {"shirt": shirt, "token": {TOKEN: token}, "item_id": answer["items"][0]["itemId"], "user": user}

    async def test_the_token_works_until_its_last_second(self, shop: Shop, given: dict[str, Any]) -> None:
        # given
        shop.clock.advance(seconds=3599)

        # when
        body = await cart(shop, given["token"])

        # then
        assert lines_of(body) == [(given["shirt"]["productId"], variant_id(given["shirt"]), 2)]

    @pytest.mark.parametrize("action", ["read", "set", "remove", "merge"])
    async def test_past_it_every_request_with_the_token_is_refused(
        self, shop: Shop, given: dict[str, Any], action: str
    ) -> None:
        # given
        shop.clock.advance(seconds=3600)
        before = await snapshot(shop)

        # when
        if action == "read":
            response = await shop.client.get(V1, headers=given["token"])
        elif action == "set":
            response = await set_item(shop, line(given["shirt"], 1), given["token"])
        elif action == "remove":
            response = await remove(shop, given["item_id"], given["token"])
        else:
            signed_in = {"Authorization": f"Bearer {(await shop.login())['accessToken']}"}
            response = await merge(shop, signed_in, {"cartToken": given["token"][TOKEN]})

        # then
        assert_error(response, 401, "CART_TOKEN_EXPIRED")
        assert TOKEN not in response.headers
        assert await snapshot(shop) == before

    async def test_each_write_renews_the_cart_and_answers_a_renewed_token(
        self, shop: Shop, given: dict[str, Any]
    ) -> None:
        # given a write shortly before the first token runs out
        shop.clock.advance(seconds=3000)
        renewed = await set_item(shop, line(given["shirt"], 3), given["token"])
        assert renewed.status_code == 200, renewed.text
        fresh = {TOKEN: renewed.headers[TOKEN]}

        # when the first token's hour is over
        shop.clock.advance(seconds=1000)

        # then the old token is refused; the renewed one still reaches the cart, and merges it
        assert_error(await shop.client.get(V1, headers=given["token"]), 401, "CART_TOKEN_EXPIRED")
        expected = [(given["shirt"]["productId"], variant_id(given["shirt"]), 3)]
        assert lines_of(await cart(shop, fresh)) == expected
        signed_in = {"Authorization": f"Bearer {(await shop.login())['accessToken']}"}
        merged = await merge(shop, signed_in, {"cartToken": fresh[TOKEN]})
        assert merged.status_code == 200, merged.text
        assert lines_of(merged.json()) == expected

    async def test_a_guest_without_a_token_after_expiry_starts_a_new_cart(
        self, shop: Shop, given: dict[str, Any]
    ) -> None:
        # given
        old = guest_cart_id(shop, given["token"][TOKEN])
        shop.clock.advance(seconds=3601)

        # when
        token, body = await guest_line(shop, line(given["shirt"], 1))

        # then
        assert guest_cart_id(shop, token) not in (old, None)
        assert lines_of(body) == [(given["shirt"]["productId"], variant_id(given["shirt"]), 1)]


class TestSignedInUser:
    """A signed-in user's requests reach their own cart; an X-Cart-Token beside them is ignored."""

    @pytest.fixture
    async def given(self, shop: Shop) -> dict[str, Any]:
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin)
        mug = await simple_product(shop, admin)
        token, _ = await guest_line(shop, line(shirt, 2))
        user_id, user = await shop.user()
        await set_ok(shop, line(mug, 1), user)
        return {"shirt": shirt, "mug": mug, "token": token, "user_id": user_id, "user": user}

    async def test_a_guest_token_beside_the_user_does_not_change_whose_cart(
        self, shop: Shop, given: dict[str, Any]
    ) -> None:
        # given
        both = {**given["user"], TOKEN: given["token"]}
        guest_id = guest_cart_id(shop, given["token"])

        # when
        shown = await cart(shop, both)
        written = await set_item(shop, line(given["shirt"], 4), both)

        # then
        assert (shown["userId"], lines_of(shown)) == (given["user_id"], [(given["mug"]["productId"], None, 1)])
        assert written.status_code == 200, written.text
        assert TOKEN not in written.headers
        assert written.json()["userId"] == given["user_id"]
        assert await stored_lines(shop, user_id=given["user_id"]) == [
            (given["mug"]["productId"], None, 1),
            (given["shirt"]["productId"], variant_id(given["shirt"]), 4),
        ]
        assert await stored_lines(shop, guest=guest_id) == [
            (given["shirt"]["productId"], variant_id(given["shirt"]), 2)
        ]

    async def test_a_forged_token_beside_the_user_is_not_even_read(self, shop: Shop, given: dict[str, Any]) -> None:
        # when
        response = await shop.client.get(V1, headers={**given["user"], TOKEN: "not-a-cart-token"})

        # then
        assert response.status_code == 200, response.text
        assert response.json()["userId"] == given["user_id"]

    async def test_a_user_cannot_remove_a_guest_line_through_the_token(self, shop: Shop, given: dict[str, Any]) -> None:
        # given
        guest_item = (await cart(shop, {TOKEN: given["token"]}))["items"][0]["itemId"]
        before = await snapshot(shop)

        # when
        response = await remove(shop, guest_item, {**given["user"], TOKEN: given["token"]})

        # then
        assert_error(response, 404, "CART_ITEM_NOT_FOUND")
        assert await snapshot(shop) == before
