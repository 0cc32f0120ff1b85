"""Checkout under real concurrency, on every SQL backend: many POST /api/v1/orders at once,
each on its own connections, through the real routes; then what is stored is checked against
what the buyers were told."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.carts.support import line, simple_product
from tests.conftest import Shop
from tests.orders.conftest import ALL
from tests.orders.support import (
    Buyer,
    buyer,
    coupon_state,
    create_coupon,
    fill,
    orders_stored,
    place,
    rebuilt,
    stock,
)
from tests.payments.support import payment_row, signed_event

pytestmark = ALL


@pytest.fixture
async def shop(shop: Shop) -> AsyncIterator[Shop]:
    """The shop with small connection pools, so that three test processes running these at
    once stay within a server's 100 connections (each request still has connections of its
    own in every module it touches: the transactions really run at once)."""
    async with rebuilt(shop, db_pool_size=4) as small:
        yield small


async def buyers_of(shop: Shop, product: dict[str, Any], count: int, quantity: int = 1) -> list[Buyer]:
    """`count` buyers, each with `quantity` of the product in the cart."""
    everyone = []
    for n in range(count):
        who = await buyer(shop, f"buyer{n}@example.com")
        await fill(shop, who, line(product, quantity))
        everyone.append(who)
    return everyone


class TestTheLastUnit:
    async def test_two_buyers_at_once_one_gets_it(self, shop: Shop) -> None:
        # given one mug left and two buyers with it in their carts
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=1)
        asha, ravi = await buyers_of(shop, mug, 2)

        # when both check out at once
        answers = await asyncio.gather(place(shop, asha), place(shop, ravi))

        # then exactly one order is confirmed; the other is refused and stored FAILED
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        won = next(a for a in answers if a.status_code == 201).json()
        lost = next(a for a in answers if a.status_code == 409).json()
        assert won["status"] == "CONFIRMED"
        assert lost["code"] == "INSUFFICIENT_STOCK"
        stored = {o["order_id"]: (o["user_id"], o["status"]) for o in await orders_stored(shop)}
        loser = ravi if won["userId"] == asha.user_id else asha
        assert sorted(stored.values()) == sorted([(won["userId"], "CONFIRMED"), (loser.user_id, "FAILED")])
        assert stored[won["orderId"]] == (won["userId"], "CONFIRMED")
        assert await stock(shop, mug) == (0, 0, 0)
        stock_count = await shop.scalar("inventory", "SELECT MIN(stock_count - reserved_count) FROM inventory")
        assert int(stock_count) == 0

    async def test_ten_buyers_for_three_units(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=3)
        everyone = await buyers_of(shop, mug, 10)

        answers = await asyncio.gather(*(place(shop, who) for who in everyone))

        assert Counter(a.status_code for a in answers) == {201: 3, 409: 7}, [a.text for a in answers]
        assert Counter(o["status"] for o in await orders_stored(shop)) == {"CONFIRMED": 3, "FAILED": 7}
        assert await stock(shop, mug) == (0, 0, 0)


class TestOrderNumbers:
    async def test_twenty_orders_at_once_get_twenty_consecutive_numbers(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=20)
        everyone = await buyers_of(shop, mug, 20)
        day = f"{shop.clock.now():%Y%m%d}"

        answers = await asyncio.gather(*(place(shop, who) for who in everyone))

        assert [a.status_code for a in answers] == [201] * 20, [a.text for a in answers if a.status_code != 201]
        numbers = sorted(a.json()["orderId"] for a in answers)
        assert numbers == [f"ord_{day}_{n:04d}" for n in range(1, 21)]
        assert sorted(o["order_id"] for o in await orders_stored(shop)) == numbers
        assert {a.json()["userId"] for a in answers} == {who.user_id for who in everyone}
        assert await stock(shop, mug) == (0, 0, 0)


class TestCouponLimit:
    async def test_a_coupon_for_three_used_by_ten_at_once(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, price=499, stock=10)
        await create_coupon(shop, admin, usageLimit=3)
        everyone = await buyers_of(shop, mug, 10)

        answers = await asyncio.gather(*(place(shop, who, couponCode="SAVE50") for who in everyone))

        codes = Counter((a.status_code, a.json().get("code")) for a in answers)
        assert codes == {(201, None): 3, (409, "COUPON_NOT_APPLICABLE"): 7}, [a.text for a in answers]
        orders = await orders_stored(shop)
        assert [(o["coupon_code"], str(o["discount_amount"])) for o in orders] == [("SAVE50", "50.00")] * 3
        used, redemptions = await coupon_state(shop, "SAVE50")
        winners = sorted(a.json()["userId"] for a in answers if a.status_code == 201)
        assert (used, sorted(u for u, _ in redemptions)) == (3, winners)
        assert sorted(o for _, o in redemptions) == sorted(o["order_id"] for o in orders)
        assert await stock(shop, mug) == (7, 0, 7)


class TestTheSameKeyAtOnce:
    async def test_two_requests_with_one_key_make_one_order(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=5)
        [asha] = await buyers_of(shop, mug, 1, quantity=2)

        answers = await asyncio.gather(*(place(shop, asha, key="checkout-1") for _ in range(2)))

        assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
        assert answers[0].json()["orderId"] == answers[1].json()["orderId"]
        [order] = await orders_stored(shop)
        assert (order["order_id"], order["status"]) == (answers[0].json()["orderId"], "CONFIRMED")
        assert await stock(shop, mug) == (3, 0, 3)


class TestPaidAtOnce:
    async def test_two_gateway_checkouts_of_the_last_unit_confirm_one(self, shop: Shop) -> None:
        # given one mug left and two buyers paying online at once
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=1)
        asha, ravi = await buyers_of(shop, mug, 2)

        answers = await asyncio.gather(
            place(shop, asha, paymentMethod="PAYMENT_GATEWAY"), place(shop, ravi, paymentMethod="PAYMENT_GATEWAY")
        )

        # then one waits for its payment, the other is refused with nothing to pay
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        won = next(a for a in answers if a.status_code == 201).json()
        # when the gateway's capture arrives five times at once
        body, headers = signed_event(shop, await payment_row(shop, won["paymentId"]), event_id="evt_once")
        deliveries = await asyncio.gather(
            *(shop.client.post("/api/v1/payments/webhook", content=body, headers=headers) for _ in range(5))
        )
        await shop.relay()

        # then it counts once: one confirmed order, one unit sold, one captured payment
        assert sorted(d.json()["outcome"] for d in deliveries) == ["CAPTURED"] + ["DUPLICATE"] * 4
        assert Counter(o["status"] for o in await orders_stored(shop)) == {"CONFIRMED": 1, "FAILED": 1}
        assert len(await shop.events("orders", "order.confirmed")) == 1
        assert len(await shop.events("payments", "payment.captured")) == 1
        assert await stock(shop, mug) == (0, 0, 0)
