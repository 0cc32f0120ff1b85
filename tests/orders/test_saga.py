"""The checkout saga carried on by the worker (`Checkout.resume`), on every SQL backend: an
order whose process stopped after a step is finished, or failed and compensated, exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from tests.carts.support import line, simple_product
from tests.conftest import Shop
from tests.orders.conftest import ALL
from tests.orders.support import (
    Buyer,
    buyer,
    cart_lines,
    coupon_state,
    create_coupon,
    fill,
    order_stored,
    stalled,
    stock,
    world,
)
from tienda.orders.checkout import Checkout
from tienda.orders.models import Order
from tienda.orders.wiring import checkout

NOW = timedelta(0)

pytestmark = ALL


async def given_a_stalled_order(
    shop: Shop, *, reserve: bool = False, coupon: bool = False
) -> tuple[dict[str, str], dict[str, Any], Buyer, str]:
    """2 mugs (5 in stock) in Asha's cart and an order of them stopped at PLACED (with `reserve`,
    after holding them)."""
    _, admin = await shop.admin()
    mug = await simple_product(shop, admin, price=499, stock=5)
    if coupon:
        await create_coupon(shop, admin)
    asha = await buyer(shop)
    await fill(shop, asha, line(mug, 2))
    order_id = await stalled(shop, asha, reserve=reserve, coupon_code="SAVE50" if coupon else None)
    return admin, mug, asha, order_id


def worker(shop: Shop) -> Checkout:
    return checkout(shop.platform)


class TestResumeFromPlaced:
    async def test_the_order_is_reserved_confirmed_and_sold(self, shop: Shop) -> None:
        # given an order stored at PLACED: nothing held, the cart as it was
        _, mug, asha, order_id = await given_a_stalled_order(shop)
        stored = await order_stored(shop, order_id)
        assert (stored["status"], stored["saga_step"]) == ("CREATED", "PLACED")
        assert await stock(shop, mug) == (5, 0, 5)
        assert [e["orderId"] for e in await shop.events("orders", "order.created")] == [order_id]
        assert await shop.events("orders", "order.confirmed") == []

        # when the worker runs
        moved = await worker(shop).resume(stalled_after=NOW)

        # then the order is finished as checkout would have
        assert moved == 1
        stored = await order_stored(shop, order_id)
        assert (stored["status"], stored["payment_status"], stored["saga_step"]) == ("CONFIRMED", "COD_PENDING", "DONE")
        assert await stock(shop, mug) == (3, 0, 3)
        assert await cart_lines(shop, asha) == []
        assert [(e["orderId"], e["status"]) for e in await shop.events("orders", "order.confirmed")] == [
            (order_id, "CONFIRMED")
        ]

    async def test_running_it_again_changes_nothing(self, shop: Shop) -> None:
        _, mug, asha, _ = await given_a_stalled_order(shop)
        assert await worker(shop).resume(stalled_after=NOW) == 1
        before = await world(shop, asha, mug)

        assert await worker(shop).resume(stalled_after=NOW) == 0

        assert await world(shop, asha, mug) == before

    async def test_an_order_whose_stock_is_gone_ends_failed(self, shop: Shop) -> None:
        # given a stalled order with a coupon, and then the stock sold elsewhere
        admin, mug, asha, order_id = await given_a_stalled_order(shop, coupon=True)
        assert await coupon_state(shop, "SAVE50") == (1, [(asha.user_id, order_id)])
        response = await shop.client.post(
            "/api/v1/inventory/adjust",
            json={"productId": mug["productId"], "delta": -4, "reason": "sold in the shop"},
            headers=admin,
        )
        assert response.status_code == 200, response.text

        # when the worker runs
        assert await worker(shop).resume(stalled_after=NOW) == 1

        # then the order FAILED, the coupon is back, nothing was taken
        stored = await order_stored(shop, order_id)
        assert (stored["status"], stored["payment_status"], stored["failure_reason"], stored["saga_step"]) == (
            "FAILED",
            "NOT_CHARGED",
            "INSUFFICIENT_STOCK",
            "DONE",
        )
        assert await coupon_state(shop, "SAVE50") == (0, [])
        assert await stock(shop, mug) == (1, 0, 1)
        assert await cart_lines(shop, asha) == [(mug["productId"], None, 2)]
        assert [(e["orderId"], e["reason"]) for e in await shop.events("orders", "order.failed")] == [
            (order_id, "INSUFFICIENT_STOCK")
        ]
        before = await world(shop, asha, mug)
        assert await worker(shop).resume(stalled_after=NOW) == 0
        assert await world(shop, asha, mug) == before

    async def test_only_orders_stalled_long_enough_are_taken(self, shop: Shop) -> None:
        _, mug, _, order_id = await given_a_stalled_order(shop)

        shop.clock.advance(seconds=29)
        assert await worker(shop).resume() == 0
        assert (await order_stored(shop, order_id))["saga_step"] == "PLACED"

        shop.clock.advance(seconds=1)
        assert await worker(shop).resume() == 1
        assert (await order_stored(shop, order_id))["status"] == "CONFIRMED"
        assert await stock(shop, mug) == (3, 0, 3)


class TestResumeAfterTheReservation:
    async def test_the_held_units_are_sold_once_and_the_order_confirmed(self, shop: Shop) -> None:
        _, mug, asha, order_id = await given_a_stalled_order(shop, reserve=True)
        assert (await order_stored(shop, order_id))["saga_step"] == "PLACED"
        assert await stock(shop, mug) == (5, 2, 3)

        assert await worker(shop).resume(stalled_after=NOW) == 1

        stored = await order_stored(shop, order_id)
        assert (stored["status"], stored["saga_step"]) == ("CONFIRMED", "DONE")
        assert await stock(shop, mug) == (3, 0, 3)
        assert await cart_lines(shop, asha) == []
        assert len(await shop.events("orders", "order.confirmed")) == 1

    async def test_an_order_an_earlier_version_left_reserved_is_confirmed(self, shop: Shop) -> None:
        """Such versions wrote the hold down as a step of its own (RESERVED) before going on."""
        _, mug, asha, order_id = await given_a_stalled_order(shop, reserve=True)
        async with shop.platform.db("orders").engine.begin() as conn:
            await conn.execute(update(Order).where(Order.order_id == order_id).values(saga_step="RESERVED"))

        assert await worker(shop).resume(stalled_after=NOW) == 1

        stored = await order_stored(shop, order_id)
        assert (stored["status"], stored["saga_step"]) == ("CONFIRMED", "DONE")
        assert await stock(shop, mug) == (3, 0, 3)
        assert await cart_lines(shop, asha) == []

    async def test_finished_failed_and_cancelled_orders_are_left_alone(self, shop: Shop) -> None:
        # given one order cancelled after its units were held
        _, mug, asha, order_id = await given_a_stalled_order(shop, reserve=True)
        response = await shop.client.post(f"/api/v1/orders/{order_id}/cancel", headers=asha.auth)
        assert response.status_code == 200, response.text
        before = await world(shop, asha, mug)

        assert await worker(shop).resume(stalled_after=NOW) == 0

        assert await world(shop, asha, mug) == before
        assert (await order_stored(shop, order_id))["status"] == "CANCELLED"
