"""Coupons at checkout, on every SQL backend: when one applies, when it is refused (and then
nothing changed), how its uses are counted and given back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.carts.support import line, simple_product
from tests.conftest import Shop
from tests.orders.support import (
    ORDERS,
    Buyer,
    assert_error,
    buyer,
    coupon_state,
    create_coupon,
    fill,
    order_stored,
    orders_stored,
    place,
    placed,
    relogin,
    stalled,
    stock,
    world,
)
from tienda.orders.seed import seed_coupons


async def given_a_cart(
    shop: Shop, *, price: float = 499, quantity: int = 2, email: str = "asha@example.com"
) -> tuple[dict[str, str], dict[str, Any], Buyer]:
    """An admin, a mug at `price` (20 in stock) and a buyer with `quantity` of them in the cart."""
    _, admin = await shop.admin()
    mug = await simple_product(shop, admin, price=price, stock=20)
    who = await buyer(shop, email)
    await fill(shop, who, line(mug, quantity))
    return admin, mug, who


async def another_buyer(shop: Shop, mug: dict[str, Any], email: str = "ravi@example.com") -> Buyer:
    who = await buyer(shop, email)
    await fill(shop, who, line(mug, 2))
    return who


def iso(shop: Shop, **delta: float) -> str:
    return (shop.clock.now() + timedelta(**delta)).isoformat()


class TestNewUser10:
    async def test_takes_10_percent_off_a_first_order(self, shop: Shop) -> None:
        await seed_coupons(shop.platform.db("orders"), now=shop.clock.now())
        _, mug, asha = await given_a_cart(shop)

        order = await placed(shop, asha, couponCode="NEWUSER10")

        assert (order["couponCode"], order["subtotalAmount"], order["discountAmount"], order["totalAmount"]) == (
            "NEWUSER10",
            998.0,
            99.8,
            1108.88,
        )
        assert await coupon_state(shop, "NEWUSER10") == (1, [(asha.user_id, order["orderId"])])
        assert await stock(shop, mug) == (18, 0, 18)

    async def test_is_refused_on_a_second_order(self, shop: Shop) -> None:
        await seed_coupons(shop.platform.db("orders"), now=shop.clock.now())
        _, mug, asha = await given_a_cart(shop)
        first = await placed(shop, asha, couponCode="NEWUSER10")
        await fill(shop, asha, line(mug, 1))
        before = await world(shop, asha, mug)

        response = await place(shop, asha, couponCode="NEWUSER10")

        assert_error(response, 409, "COUPON_NOT_APPLICABLE")
        assert await world(shop, asha, mug) == before
        assert await coupon_state(shop, "NEWUSER10") == (1, [(asha.user_id, first["orderId"])])

    async def test_is_refused_after_a_first_order_without_it(self, shop: Shop) -> None:
        await seed_coupons(shop.platform.db("orders"), now=shop.clock.now())
        _, mug, asha = await given_a_cart(shop)
        await placed(shop, asha)
        await fill(shop, asha, line(mug, 1))
        before = await world(shop, asha, mug)

        assert_error(await place(shop, asha, couponCode="NEWUSER10"), 409, "COUPON_NOT_APPLICABLE")
        assert await world(shop, asha, mug) == before

    async def test_a_failed_first_order_does_not_count(self, shop: Shop) -> None:
        # given a first order with NEWUSER10 that failed for want of stock
        await seed_coupons(shop.platform.db("orders"), now=shop.clock.now())
        admin, mug, asha = await given_a_cart(shop, quantity=2)
        await adjust(shop, admin, mug, -19)
        assert_error(await place(shop, asha, couponCode="NEWUSER10"), 409, "INSUFFICIENT_STOCK")
        assert await coupon_state(shop, "NEWUSER10") == (0, [])

        # when the stock is back and she tries again
        await adjust(shop, admin, mug, 5)
        order = await placed(shop, asha, couponCode="NEWUSER10")

        # then the coupon applies: the failed order was not a first order
        assert (order["status"], order["discountAmount"]) == ("CONFIRMED", 99.8)
        assert [o["status"] for o in await orders_stored(shop)] == ["FAILED", "CONFIRMED"]
        assert await coupon_state(shop, "NEWUSER10") == (1, [(asha.user_id, order["orderId"])])

    async def test_a_cancelled_first_order_does_not_count(self, shop: Shop) -> None:
        # given a first order with NEWUSER10, cancelled before it was confirmed
        await seed_coupons(shop.platform.db("orders"), now=shop.clock.now())
        _, _, asha = await given_a_cart(shop)
        cancelled = await stalled(shop, asha, coupon_code="NEWUSER10", reserve=True)
        assert await coupon_state(shop, "NEWUSER10") == (1, [(asha.user_id, cancelled)])
        response = await shop.client.post(f"{ORDERS}/{cancelled}/cancel", headers=asha.auth)
        assert response.status_code == 200, response.text
        assert await coupon_state(shop, "NEWUSER10") == (0, [])

        # when she orders again with it
        order = await placed(shop, asha, couponCode="NEWUSER10")

        # then it applies
        assert order["discountAmount"] == 99.8
        assert await coupon_state(shop, "NEWUSER10") == (1, [(asha.user_id, order["orderId"])])


async def adjust(shop: Shop, admin: dict[str, str], product: dict[str, Any], delta: int) -> None:
    response = await shop.client.post(
        "/api/v1/inventory/adjust",
        json={"productId": product["productId"], "delta": delta, "reason": "count"},
        headers=admin,
    )
    assert response.status_code == 200, response.text


class TestTerms:
    async def test_a_minimum_order_not_reached(self, shop: Shop) -> None:
        admin, mug, asha = await given_a_cart(shop, price=499, quantity=2)
        await create_coupon(shop, admin, minOrderAmount=1000)
        before = await world(shop, asha, mug)

        response = await place(shop, asha, couponCode="SAVE50")

        assert_error(response, 409, "COUPON_NOT_APPLICABLE")
        assert await world(shop, asha, mug) == before

    async def test_a_minimum_order_just_reached(self, shop: Shop) -> None:
        admin, _, asha = await given_a_cart(shop, price=500, quantity=2)
        await create_coupon(shop, admin, minOrderAmount=1000)

        order = await placed(shop, asha, couponCode="SAVE50")

        assert (order["subtotalAmount"], order["discountAmount"], order["shippingAmount"]) == (1000.0, 50.0, 49.0)

    async def test_the_maximum_discount_caps_a_percentage(self, shop: Shop) -> None:
        admin, _, asha = await given_a_cart(shop, price=499, quantity=2)
        await create_coupon(shop, admin, code="HALF", discountType="PERCENT", value=50, maxDiscountAmount=100)

        order = await placed(shop, asha, couponCode="HALF")

        assert order["discountAmount"] == 100.0

    async def test_an_expired_coupon(self, shop: Shop) -> None:
        admin, mug, asha = await given_a_cart(shop)
        await create_coupon(shop, admin, endsAt=iso(shop, hours=1))
        shop.clock.advance(hours=1)
        await relogin(shop, asha)
        before = await world(shop, asha, mug)

        response = await place(shop, asha, couponCode="SAVE50")

        assert_error(response, 409, "COUPON_NOT_APPLICABLE")
        assert await world(shop, asha, mug) == before

    async def test_a_coupon_not_valid_yet(self, shop: Shop) -> None:
        admin, mug, asha = await given_a_cart(shop)
        await create_coupon(shop, admin, startsAt=iso(shop, seconds=1))
        before = await world(shop, asha, mug)

        assert_error(await place(shop, asha, couponCode="SAVE50"), 409, "COUPON_NOT_APPLICABLE")
        assert await world(shop, asha, mug) == before

    async def test_a_coupon_within_its_window(self, shop: Shop) -> None:
        admin, _, asha = await given_a_cart(shop)
        await create_coupon(shop, admin, startsAt=iso(shop), endsAt=iso(shop, seconds=1))

        order = await placed(shop, asha, couponCode="SAVE50")

        assert order["discountAmount"] == 50.0

    async def test_a_coupon_used_up(self, shop: Shop) -> None:
        admin, mug, asha = await given_a_cart(shop)
        await create_coupon(shop, admin, usageLimit=1)
        first = await placed(shop, asha, couponCode="SAVE50")
        ravi = await another_buyer(shop, mug)
        before = await world(shop, ravi, mug)

        response = await place(shop, ravi, couponCode="SAVE50")

        assert_error(response, 409, "COUPON_NOT_APPLICABLE")
        assert await world(shop, ravi, mug) == before
        assert await coupon_state(shop, "SAVE50") == (1, [(asha.user_id, first["orderId"])])

    async def test_the_limit_per_buyer(self, shop: Shop) -> None:
        # given a coupon each buyer may use twice, used twice by Asha
        admin, mug, asha = await given_a_cart(shop)
        await create_coupon(shop, admin, perUserLimit=2)
        first = await placed(shop, asha, couponCode="SAVE50")
        await fill(shop, asha, line(mug, 1))
        second = await placed(shop, asha, couponCode="SAVE50")
        await fill(shop, asha, line(mug, 1))
        before = await world(shop, asha, mug)

        # then a third use is hers no more
        assert_error(await place(shop, asha, couponCode="SAVE50"), 409, "COUPON_NOT_APPLICABLE")
        assert await world(shop, asha, mug) == before

        # but Ravi still may
        ravi = await another_buyer(shop, mug)
        third = await placed(shop, ravi, couponCode="SAVE50")
        assert await coupon_state(shop, "SAVE50") == (
            3,
            [
                (asha.user_id, first["orderId"]),
                (asha.user_id, second["orderId"]),
                (ravi.user_id, third["orderId"]),
            ],
        )

    async def test_an_unknown_code(self, shop: Shop) -> None:
        _, mug, asha = await given_a_cart(shop)
        before = await world(shop, asha, mug)

        assert_error(await place(shop, asha, couponCode="NOSUCH"), 409, "COUPON_NOT_FOUND")
        assert await world(shop, asha, mug) == before

    async def test_an_inactive_coupon_is_as_good_as_unknown(self, shop: Shop) -> None:
        admin, mug, asha = await given_a_cart(shop)
        coupon = await create_coupon(shop, admin)
        retired = await shop.client.patch(
            f"/api/v1/coupons/{coupon['couponId']}", json={"isActive": False}, headers=admin
        )
        assert retired.status_code == 200
        before = await world(shop, asha, mug)

        assert_error(await place(shop, asha, couponCode="SAVE50"), 409, "COUPON_NOT_FOUND")
        assert await world(shop, asha, mug) == before

    async def test_codes_are_case_insensitive(self, shop: Shop) -> None:
        admin, mug, asha = await given_a_cart(shop)
        await create_coupon(shop, admin, code="Save50")
        ravi = await another_buyer(shop, mug)

        hers = await placed(shop, asha, couponCode="save50")
        his = await placed(shop, ravi, couponCode="sAvE50")

        assert [(o["couponCode"], o["discountAmount"]) for o in (hers, his)] == [("SAVE50", 50.0), ("SAVE50", 50.0)]
        stored = await order_stored(shop, hers["orderId"])
        assert stored["coupon_code"] == "SAVE50"
        assert await coupon_state(shop, "SAVE50") == (
            2,
            [(asha.user_id, hers["orderId"]), (ravi.user_id, his["orderId"])],
        )

    async def test_an_order_without_a_coupon_redeems_nothing(self, shop: Shop) -> None:
        admin, _, asha = await given_a_cart(shop)
        await create_coupon(shop, admin)

        order = await placed(shop, asha)

        assert (order["couponCode"], order["discountAmount"]) == (None, 0.0)
        assert await coupon_state(shop, "SAVE50") == (0, [])
