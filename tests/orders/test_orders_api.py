"""An order once placed, on every SQL backend: reading and listing (own, or any for an admin),
the buyer's cancel before it is confirmed, and the admin's moves along the lifecycle."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.carts.support import line, product_for_sale, simple_product
from tests.conftest import Shop
from tests.orders.support import (
    ORDERS,
    Buyer,
    assert_error,
    buyer,
    cart_lines,
    coupon_state,
    create_coupon,
    fill,
    order_for,
    order_stored,
    placed,
    stalled,
    stock,
    world,
)
from tienda.orders.wiring import checkout


async def get(shop: Shop, order_id: str, auth: dict[str, str]) -> Any:
    return await shop.client.get(f"{ORDERS}/{order_id}", headers=auth)


async def listing(shop: Shop, auth: dict[str, str], **params: Any) -> Any:
    return await shop.client.get(ORDERS, params=params, headers=auth)


def ids(page: dict[str, Any]) -> list[str]:
    return [o["orderId"] for o in page["items"]]


class TestGet:
    async def test_the_buyer_reads_her_order(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        asha = await buyer(shop)
        order = await order_for(shop, admin, asha)

        response = await get(shop, order["orderId"], asha.auth)

        assert response.status_code == 200, response.text
        assert response.json() == order

    async def test_under_the_alias_path_too(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        asha = await buyer(shop)
        order = await order_for(shop, admin, asha)

        response = await shop.client.get(f"/api/orders/{order['orderId']}", headers=asha.auth)

        assert response.status_code == 200
        assert response.json() == order

    async def test_someone_elses_order_looks_absent(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        asha = await buyer(shop)
        ravi = await buyer(shop, "ravi@example.com")
        order = await order_for(shop, admin, asha)

        assert_error(await get(shop, order["orderId"], ravi.auth), 404, "ORDER_NOT_FOUND")

    async def test_an_unknown_order(self, shop: Shop) -> None:
        asha = await buyer(shop)
        assert_error(await get(shop, "ord_20260101_0001", asha.auth), 404, "ORDER_NOT_FOUND")

    async def test_an_admin_reads_anyones(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        asha = await buyer(shop)
        order = await order_for(shop, admin, asha)

        response = await get(shop, order["orderId"], admin)

        assert response.status_code == 200
        assert response.json() == order

    async def test_anonymous(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        asha = await buyer(shop)
        order = await order_for(shop, admin, asha)

        assert (await shop.client.get(f"{ORDERS}/{order['orderId']}")).status_code == 401
        assert (await shop.client.get(ORDERS)).status_code == 401


class TestList:
    async def given_orders(self, shop: Shop) -> tuple[dict[str, str], Buyer, Buyer, list[str], list[str]]:
        """Asha's three orders and Ravi's two, placed a minute apart, alternating; one of Asha's cancelled."""
        _, admin = await shop.admin()
        asha = await buyer(shop)
        ravi = await buyer(shop, "ravi@example.com")
        hers: list[str] = []
        his: list[str] = []
        for who, mine in ((asha, hers), (ravi, his), (asha, hers), (ravi, his)):
            mine.append((await order_for(shop, admin, who))["orderId"])
            shop.clock.advance(minutes=1)
        mug = await simple_product(shop, admin)
        await fill(shop, asha, line(mug, 1))
        cancelled = await stalled(shop, asha)
        response = await shop.client.post(f"{ORDERS}/{cancelled}/cancel", headers=asha.auth)
        assert response.status_code == 200, response.text
        hers.append(cancelled)
        return admin, asha, ravi, hers, his

    async def test_a_buyer_lists_her_own_newest_first(self, shop: Shop) -> None:
        _, asha, _, hers, _ = await self.given_orders(shop)

        response = await listing(shop, asha.auth)

        assert response.status_code == 200, response.text
        body = response.json()
        assert (ids(body), body["page"], body["size"], body["total"]) == (hers[::-1], 1, 20, 3)
        assert body["items"][0] == (await get(shop, hers[-1], asha.auth)).json()

    async def test_pages(self, shop: Shop) -> None:
        _, asha, _, hers, _ = await self.given_orders(shop)

        first = (await listing(shop, asha.auth, page=1, size=2)).json()
        second = (await listing(shop, asha.auth, page=2, size=2)).json()
        beyond = (await listing(shop, asha.auth, page=3, size=2)).json()

        assert (ids(first), first["page"], first["size"], first["total"]) == ([hers[2], hers[1]], 1, 2, 3)
        assert (ids(second), second["page"], second["total"]) == ([hers[0]], 2, 3)
        assert (ids(beyond), beyond["total"]) == ([], 3)

    async def test_a_buyers_user_id_filter_is_ignored(self, shop: Shop) -> None:
        _, asha, ravi, hers, _ = await self.given_orders(shop)

        response = await listing(shop, asha.auth, userId=ravi.user_id)

        assert response.status_code == 200
        assert ids(response.json()) == hers[::-1]

    async def test_a_buyer_filters_her_own_by_status(self, shop: Shop) -> None:
        _, asha, _, hers, _ = await self.given_orders(shop)

        response = await listing(shop, asha.auth, status="CANCELLED")

        assert ids(response.json()) == [hers[2]]

    async def test_an_admin_lists_everyones(self, shop: Shop) -> None:
        admin, _, _, hers, his = await self.given_orders(shop)

        body = (await listing(shop, admin)).json()

        assert (ids(body), body["total"]) == ([hers[2], his[1], hers[1], his[0], hers[0]], 5)

    async def test_an_admin_filters_by_user_status_and_time(self, shop: Shop) -> None:
        admin, asha, ravi, hers, his = await self.given_orders(shop)
        created = {o: (await get(shop, o, admin)).json()["createdAt"] for o in hers + his}

        assert ids((await listing(shop, admin, userId=ravi.user_id)).json()) == his[::-1]
        assert ids((await listing(shop, admin, status="CONFIRMED")).json()) == [his[1], hers[1], his[0], hers[0]]
        assert ids((await listing(shop, admin, userId=asha.user_id, status="CONFIRMED")).json()) == [
            hers[1],
            hers[0],
        ]
        # from: created at or after; to: created before
        window = (await listing(shop, admin, **{"from": created[his[0]], "to": created[his[1]]})).json()
        assert (ids(window), window["total"]) == ([hers[1], his[0]], 2)
        assert ids((await listing(shop, admin, status="FAILED")).json()) == []

    @pytest.mark.parametrize("params", [{"status": "LOST"}, {"size": 101}, {"page": 0}, {"from": "yesterday"}])
    async def test_bad_filters(self, shop: Shop, params: dict[str, Any]) -> None:
        asha = await buyer(shop)
        assert_error(await listing(shop, asha.auth, **params), 400, "VALIDATION_FAILED")


class TestCancel:
    async def test_a_created_order_is_cancelled_and_gives_everything_back(self, shop: Shop) -> None:
        # given an order holding 2 mugs and a coupon, stopped before it was confirmed
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, price=499, stock=5)
        await create_coupon(shop, admin)
        asha = await buyer(shop)
        await fill(shop, asha, line(mug, 2))
        order_id = await stalled(shop, asha, coupon_code="SAVE50", reserve=True)
        assert await stock(shop, mug) == (5, 2, 3)
        assert await coupon_state(shop, "SAVE50") == (1, [(asha.user_id, order_id)])

        # when she cancels it
        response = await shop.client.post(
            f"{ORDERS}/{order_id}/cancel", json={"reason": "Ordered by mistake"}, headers=asha.auth
        )

        # then it is CANCELLED, the units and the coupon are back, nothing was charged
        assert response.status_code == 200, response.text
        order = response.json()
        assert (order["status"], order["paymentStatus"], order["failureReason"]) == (
            "CANCELLED",
            "NOT_CHARGED",
            "Ordered by mistake",
        )
        assert await stock(shop, mug) == (5, 0, 5)
        assert await coupon_state(shop, "SAVE50") == (0, [])
        stored = await order_stored(shop, order_id)
        assert (stored["status"], stored["saga_step"]) == ("CANCELLED", "DONE")
        assert [(e["orderId"], e["status"]) for e in await shop.events("orders", "order.cancelled")] == [
            (order_id, "CANCELLED")
        ]
        assert (await get(shop, order_id, asha.auth)).json() == order
        # the cart still holds what she had chosen
        assert await cart_lines(shop, asha) == [(mug["productId"], None, 2)]
        # and the worker leaves it be
        assert await checkout(shop.platform).resume(stalled_after=timedelta(0)) == 0
        assert (await order_stored(shop, order_id))["status"] == "CANCELLED"

    async def test_one_that_holds_nothing_yet(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=5)
        asha = await buyer(shop)
        await fill(shop, asha, line(mug, 2))
        order_id = await stalled(shop, asha)

        response = await shop.client.post(f"{ORDERS}/{order_id}/cancel", headers=asha.auth)

        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["failureReason"]) == ("CANCELLED", "Cancelled by the buyer")
        assert await stock(shop, mug) == (5, 0, 5)

    async def test_an_admin_cancels_anyones(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=5)
        asha = await buyer(shop)
        await fill(shop, asha, line(mug, 2))
        order_id = await stalled(shop, asha, reserve=True)

        response = await shop.client.post(f"{ORDERS}/{order_id}/cancel", headers=admin)

        assert response.status_code == 200, response.text
        assert response.json()["status"] == "CANCELLED"
        assert await stock(shop, mug) == (5, 0, 5)

    async def test_a_confirmed_cod_order_is_cancelled_and_its_units_come_back(self, shop: Shop) -> None:
        # given a confirmed COD order of 1 of 5 units (sold: 4 left)
        _, admin = await shop.admin()
        asha = await buyer(shop)
        product = await product_for_sale(shop, admin, price=499, stock=5)
        await fill(shop, asha, line(product, 1))
        order = await placed(shop, asha)
        assert await stock(shop, product) == (4, 0, 4)

        # when she cancels it
        response = await shop.client.post(f"{ORDERS}/{order['orderId']}/cancel", headers=asha.auth)

        # then it is CANCELLED, nothing was charged, the unit is back in stock
        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["paymentStatus"]) == ("CANCELLED", "NOT_CHARGED")
        assert await stock(shop, product) == (5, 0, 5)
        assert (await order_stored(shop, order["orderId"]))["saga_step"] == "DONE"
        # and cancelling again changes nothing
        again = await shop.client.post(f"{ORDERS}/{order['orderId']}/cancel", headers=asha.auth)
        assert_error(again, 409, "ILLEGAL_STATUS_TRANSITION")
        assert await stock(shop, product) == (5, 0, 5)

    async def test_a_shipped_order_cannot_be_cancelled(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        asha = await buyer(shop)
        order = await order_for(shop, admin, asha)
        for status, extra in (("PACKED", {}), ("SHIPPED", {"trackingNumber": "AWB123"})):
            moved = await shop.client.post(
                f"{ORDERS}/{order['orderId']}/status", json={"status": status, **extra}, headers=admin
            )
            assert moved.status_code == 200, moved.text
        before = await world(shop, asha)

        response = await shop.client.post(f"{ORDERS}/{order['orderId']}/cancel", headers=asha.auth)

        assert_error(response, 409, "ILLEGAL_STATUS_TRANSITION")
        assert await world(shop, asha) == before

    async def test_a_cancelled_order_cannot_be_cancelled_again(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=5)
        asha = await buyer(shop)
        await fill(shop, asha, line(mug, 1))
        order_id = await stalled(shop, asha, reserve=True)
        assert (await shop.client.post(f"{ORDERS}/{order_id}/cancel", headers=asha.auth)).status_code == 200
        before = await world(shop, asha, mug)

        response = await shop.client.post(f"{ORDERS}/{order_id}/cancel", headers=asha.auth)

        assert_error(response, 409, "ILLEGAL_STATUS_TRANSITION")
        assert await world(shop, asha, mug) == before

    async def test_someone_elses_order(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=5)
        asha = await buyer(shop)
        ravi = await buyer(shop, "ravi@example.com")
        await fill(shop, asha, line(mug, 1))
        order_id = await stalled(shop, asha, reserve=True)
        before = await world(shop, asha, mug)

        response = await shop.client.post(f"{ORDERS}/{order_id}/cancel", headers=ravi.auth)

        assert_error(response, 404, "ORDER_NOT_FOUND")
        assert await world(shop, asha, mug) == before

    async def test_anonymous_and_unknown(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=5)
        asha = await buyer(shop)
        await fill(shop, asha, line(mug, 1))
        order_id = await stalled(shop, asha, reserve=True)
        before = await world(shop, asha, mug)

        assert (await shop.client.post(f"{ORDERS}/{order_id}/cancel")).status_code == 401
        assert_error(
            await shop.client.post(f"{ORDERS}/ord_20260101_0042/cancel", headers=asha.auth), 404, "ORDER_NOT_FOUND"
        )
        assert await world(shop, asha, mug) == before


async def move(shop: Shop, order_id: str, auth: dict[str, str], status: str, tracking: str | None = None) -> Any:
    body = {"status": status} | ({"trackingNumber": tracking} if tracking else {})
    return await shop.client.post(f"{ORDERS}/{order_id}/status", json=body, headers=auth)


class TestAdminMoves:
    async def test_confirmed_packed_shipped_delivered(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        asha = await buyer(shop)
        order = await order_for(shop, admin, asha)
        order_id = order["orderId"]

        steps = []
        for status, tracking in (("PACKED", None), ("SHIPPED", "DTDC123456789IN"), ("DELIVERED", None)):
            shop.clock.advance(minutes=1)
            response = await move(shop, order_id, admin, status, tracking)
            assert response.status_code == 200, response.text
            steps.append((response.json()["status"], response.json()["trackingNumber"]))
            assert (await order_stored(shop, order_id))["status"] == status

        assert steps == [("PACKED", None), ("SHIPPED", "DTDC123456789IN"), ("DELIVERED", "DTDC123456789IN")]
        final = (await get(shop, order_id, admin)).json()
        assert final["updatedAt"] == shop.clock.now().isoformat().replace("+00:00", "Z")
        assert {k: v for k, v in final.items() if k not in ("status", "trackingNumber", "updatedAt")} == {
            k: v for k, v in order.items() if k not in ("status", "trackingNumber", "updatedAt")
        }
        for event, status in (
            ("order.packed", "PACKED"),
            ("order.shipped", "SHIPPED"),
            ("order.delivered", "DELIVERED"),
        ):
            assert [(e["orderId"], e["status"]) for e in await shop.events("orders", event)] == [(order_id, status)]
        assert [e["trackingNumber"] for e in await shop.events("orders", "order.shipped")] == ["DTDC123456789IN"]

    async def test_shipping_needs_a_tracking_number(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        asha = await buyer(shop)
        order = await order_for(shop, admin, asha)
        assert (await move(shop, order["orderId"], admin, "PACKED")).status_code == 200
        before = await world(shop, asha)

        body = assert_error(await move(shop, order["orderId"], admin, "SHIPPED"), 400, "VALIDATION_FAILED")

        assert [d["field"] for d in body["details"]] == ["body.trackingNumber"]
        assert await world(shop, asha) == before

    @pytest.mark.parametrize(
        ("path", "wanted"),
        [((), "DELIVERED"), ((), "SHIPPED"), (("PACKED",), "PACKED"), (("PACKED", "SHIPPED", "DELIVERED"), "PACKED")],
    )
    async def test_illegal_moves(self, shop: Shop, path: tuple[str, ...], wanted: str) -> None:
        _, admin = await shop.admin()
        asha = await buyer(shop)
        order = await order_for(shop, admin, asha)
        for status in path:
            assert (await move(shop, order["orderId"], admin, status, "TRK1")).status_code == 200
        before = await world(shop, asha)

        response = await move(shop, order["orderId"], admin, wanted, "TRK2")

        assert_error(response, 409, "ILLEGAL_STATUS_TRANSITION")
        assert await world(shop, asha) == before

    async def test_a_created_or_failed_order_cannot_be_packed(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=5)
        asha = await buyer(shop)
        await fill(shop, asha, line(mug, 1))
        created = await stalled(shop, asha)
        before = await world(shop, asha, mug)

        assert_error(await move(shop, created, admin, "PACKED"), 409, "ILLEGAL_STATUS_TRANSITION")
        assert await world(shop, asha, mug) == before

    async def test_only_admins(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        asha = await buyer(shop)
        order = await order_for(shop, admin, asha)
        before = await world(shop, asha)

        assert_error(await move(shop, order["orderId"], asha.auth, "PACKED"), 403, "FORBIDDEN")
        assert (await move(shop, order["orderId"], {}, "PACKED")).status_code == 401
        assert await world(shop, asha) == before

    @pytest.mark.parametrize("body", [{"status": "CANCELLED"}, {"status": "CONFIRMED"}, {"status": "PACKED", "x": 1}])
    async def test_moves_the_admin_may_not_ask_for(self, shop: Shop, body: dict[str, Any]) -> None:
        _, admin = await shop.admin()
        asha = await buyer(shop)
        order = await order_for(shop, admin, asha)
        before = await world(shop, asha)

        response = await shop.client.post(f"{ORDERS}/{order['orderId']}/status", json=body, headers=admin)

        assert_error(response, 400, "VALIDATION_FAILED")
        assert await world(shop, asha) == before

    async def test_an_unknown_order(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        assert_error(await move(shop, "ord_20260101_0001", admin, "PACKED"), 404, "ORDER_NOT_FOUND")
