"""Inventory over HTTP (SEED.md 5.4): stock per product and variant, admin adjustments with an
audit trail, and reservations for orders (reserve all or nothing, release, commit, expiry)
that never oversell. Every answer is checked against what is stored and what is published."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Shop
from tests.inventory.support import (
    ALIAS,
    ITEM_FIELDS,
    RESERVATION_FIELDS,
    STOCK_FIELDS,
    V1,
    VARIANT_FIELDS,
    adjust,
    count,
    events,
    line,
    low_stock,
    movements,
    payload,
    post,
    reserve,
    service_auth,
    snapshot,
    stock,
    stored_expiry,
    stored_item,
    stored_reservations,
)
from tests.users.support import assert_error, fields
from tienda.inventory.wiring import inventory_service
from tienda.platform.auth import Role

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def release_expired(shop: Shop) -> int:
    service = inventory_service(shop.platform)
    async with shop.platform.db("inventory").uow() as uow:
        released = await service.release_expired(uow)
        await uow.commit()
    return released


# -- adjust ---------------------------------------------------------------------------------


class TestAdjust:
    async def test_the_first_adjust_creates_the_item(self, shop: Shop) -> None:
        admin_id, auth = await shop.admin()

        response = await shop.client.post(
            f"{V1}/adjust",
            json={"productId": "p_tee", "variantId": "v_red", "delta": 50, "reason": "Initial stock", "threshold": 5},
            headers=auth,
        )

        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == STOCK_FIELDS
        assert set(body["variants"][0]) == VARIANT_FIELDS
        assert when(body["variants"][0]["updatedAt"]) == shop.clock.now()
        body["variants"][0].pop("updatedAt")
        assert body == {
            "productId": "p_tee",
            "stockCount": 50,
            "reserved": 0,
            "available": 50,
            "variants": [{"variantId": "v_red", "stockCount": 50, "reserved": 0, "available": 50, "threshold": 5}],
        }
        assert await stored_item(shop, "p_tee", "v_red") == (50, 0, 5)
        assert await movements(shop) == [("p_tee", "v_red", "ADJUST", 50, 0, "Initial stock", None, admin_id)]
        assert await events(shop) == [payload("p_tee", "v_red", 50, 0, 5, change=50)]
        assert await low_stock(shop) == []

    async def test_a_restock_adds_to_the_stock(self, shop: Shop) -> None:
        admin_id, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 10, variant_id="v_red", reason="Initial stock")
        shop.clock.advance(minutes=5)

        await adjust(shop, auth, "p_tee", 15, variant_id="v_red", reason="Restock from supplier")

        assert await stored_item(shop, "p_tee", "v_red") == (25, 0, 0)
        assert await movements(shop) == [
            ("p_tee", "v_red", "ADJUST", 10, 0, "Initial stock", None, admin_id),
            ("p_tee", "v_red", "ADJUST", 15, 0, "Restock from supplier", None, admin_id),
        ]
        assert await events(shop) == [
            payload("p_tee", "v_red", 10, 0, 0, change=10),
            payload("p_tee", "v_red", 25, 0, 0, change=15),
        ]
        body = await stock(shop, "p_tee")
        assert (body["stockCount"], body["reserved"], body["available"]) == (25, 0, 25)
        [variant] = body["variants"]
        assert (variant["stockCount"], variant["available"]) == (25, 25)
        assert when(variant["updatedAt"]) == shop.clock.now()

    async def test_a_correction_lowers_the_stock(self, shop: Shop) -> None:
        admin_id, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 10)

        await adjust(shop, auth, "p_tee", -3, reason="Damaged in the warehouse")

        assert await stored_item(shop, "p_tee") == (7, 0, 0)
        assert (await movements(shop))[-1] == ("p_tee", "", "ADJUST", -3, 0, "Damaged in the warehouse", None, admin_id)
        assert (await events(shop))[-1] == payload("p_tee", None, 7, 0, 0, change=-3)

    @pytest.mark.parametrize(("delta", "after"), [(15, 25), (-3, 7)])
    async def test_the_answer_shows_the_stock_after_the_change(self, shop: Shop, delta: int, after: int) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 10, variant_id="v_red")
        shop.clock.advance(minutes=5)

        body = await adjust(shop, auth, "p_tee", delta, variant_id="v_red")

        assert await stored_item(shop, "p_tee", "v_red") == (after, 0, 0)  # stored right
        assert (body["stockCount"], body["reserved"], body["available"]) == (after, 0, after)
        [variant] = body["variants"]
        assert (variant["stockCount"], variant["available"]) == (after, after)
        assert when(variant["updatedAt"]) == shop.clock.now()
        assert body == await stock(shop, "p_tee")

    async def test_a_threshold_alone_changes_only_the_threshold(self, shop: Shop) -> None:
        admin_id, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 10)

        body = await adjust(shop, auth, "p_tee", 0, reason="Set the low-stock level", threshold=4)

        assert body["variants"][0]["threshold"] == 4
        assert (body["stockCount"], body["available"]) == (10, 10)
        assert await stored_item(shop, "p_tee") == (10, 0, 4)
        assert (await movements(shop))[-1] == ("p_tee", "", "ADJUST", 0, 0, "Set the low-stock level", None, admin_id)
        assert (await events(shop))[-1] == payload("p_tee", None, 10, 0, 4, change=0)
        assert await low_stock(shop) == []

    async def test_a_threshold_alone_creates_an_empty_item(self, shop: Shop) -> None:
        _, auth = await shop.admin()

        body = await adjust(shop, auth, "p_tee", 0, reason="Track it", threshold=2)

        assert (body["stockCount"], body["reserved"], body["available"]) == (0, 0, 0)
        assert await stored_item(shop, "p_tee") == (0, 0, 2)

    async def test_a_first_adjust_downwards_is_refused_and_creates_nothing(self, shop: Shop) -> None:
        _, auth = await shop.admin()

        response = await shop.client.post(
            f"{V1}/adjust", json={"productId": "p_tee", "delta": -1, "reason": "Oops"}, headers=auth
        )

        assert_error(response, 409, "STOCK_BELOW_RESERVED")
        assert await count(shop, "inventory") == 0
        assert await count(shop, "inventory_movements") == 0
        assert await count(shop, "inventory_outbox_events") == 0

    async def test_stock_never_falls_below_zero(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 5)
        before = await snapshot(shop)

        response = await shop.client.post(
            f"{V1}/adjust", json={"productId": "p_tee", "delta": -6, "reason": "Lost"}, headers=auth
        )

        assert_error(response, 409, "STOCK_BELOW_RESERVED")
        assert await snapshot(shop) == before

    async def test_stock_never_falls_below_what_is_reserved(self, shop: Shop) -> None:
        admin_id, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 10, variant_id="v_red")
        await reserve(shop, service_auth(shop), "ord_1", line("p_tee", 4, "v_red"))
        before = await snapshot(shop)

        response = await shop.client.post(
            f"{V1}/adjust",
            json={"productId": "p_tee", "variantId": "v_red", "delta": -7, "reason": "Recount", "threshold": 9},
            headers=auth,
        )

        assert_error(response, 409, "STOCK_BELOW_RESERVED")
        assert await snapshot(shop) == before  # nor the threshold asked for with it

        await adjust(shop, auth, "p_tee", -6, variant_id="v_red", reason="Recount")

        assert await stored_item(shop, "p_tee", "v_red") == (4, 4, 0)
        body = await stock(shop, "p_tee")
        assert (body["stockCount"], body["reserved"], body["available"]) == (4, 4, 0)
        assert (await movements(shop))[-1] == ("p_tee", "v_red", "ADJUST", -6, 0, "Recount", None, admin_id)

    async def test_low_stock_is_published_exactly_when_available_crosses_the_threshold(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10, threshold=3)
        await adjust(shop, auth, "p_tee", -6)  # available 4: above
        assert await low_stock(shop) == []

        await adjust(shop, auth, "p_tee", -1)  # available 3: reaches the threshold
        assert await low_stock(shop) == [payload("p_tee", None, 3, 0, 3, change=-1)]

        await adjust(shop, auth, "p_tee", -1)  # available 2: already below, no new warning
        await adjust(shop, auth, "p_tee", 0, threshold=3)  # same threshold again
        assert len(await low_stock(shop)) == 1

        await adjust(shop, auth, "p_tee", 5)  # available 7: back above
        await reserve(shop, orders, "ord_1", line("p_tee", 3))  # available 4: still above
        assert len(await low_stock(shop)) == 1

        await reserve(shop, orders, "ord_2", line("p_tee", 2))  # available 2: crosses by a reservation
        assert (await low_stock(shop))[1:] == [payload("p_tee", None, 7, 5, 3, change=-2)]

        await post(shop, orders, "commit", {"orderId": "ord_1"})  # available unchanged
        await post(shop, orders, "release", {"orderId": "ord_2"})  # available up
        assert len(await low_stock(shop)) == 2
        assert len(await events(shop)) == 10  # every change is published, low or not

    async def test_every_event_carries_the_item_as_stored_after_the_change(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)

        await adjust(shop, auth, "p_tee", 8, variant_id="v_red", threshold=1)
        await reserve(shop, orders, "ord_1", line("p_tee", 3, "v_red"))
        await post(shop, orders, "release", {"orderId": "ord_1", "items": [line("p_tee", 1, "v_red")]})
        await post(shop, orders, "commit", {"orderId": "ord_1"})

        assert await events(shop) == [
            payload("p_tee", "v_red", 8, 0, 1, change=8),
            payload("p_tee", "v_red", 8, 3, 1, change=-3),
            payload("p_tee", "v_red", 8, 2, 1, change=1),
            payload("p_tee", "v_red", 6, 0, 1, change=0),
        ]
        assert await stored_item(shop, "p_tee", "v_red") == (6, 0, 1)


@SQLITE_ONLY
class TestAdjustBadInput:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"productId": "p_tee", "delta": 0, "reason": "Nothing"}, "body"),
            ({"productId": "p_tee", "delta": 5}, "body.reason"),
            ({"productId": "p_tee", "delta": 5, "reason": ""}, "body.reason"),
            ({"productId": "tee", "delta": 5, "reason": "Restock"}, "body.productId"),
            ({"productId": "p_tee", "variantId": "red", "delta": 5, "reason": "Restock"}, "body.variantId"),
            ({"productId": "p_tee", "delta": 5, "reason": "Restock", "threshold": -1}, "body.threshold"),
            ({"productId": "p_tee", "delta": 1_000_001, "reason": "Restock"}, "body.delta"),
            ({"productId": "p_tee", "delta": "5x", "reason": "Restock"}, "body.delta"),
            ({"productId": "p_tee", "delta": 5, "reason": "Restock", "stockCount": 9}, "body.stockCount"),
        ],
    )
    async def test_is_refused_and_stores_nothing(self, shop: Shop, body: dict[str, Any], field: str) -> None:
        _, auth = await shop.admin()

        response = await shop.client.post(f"{V1}/adjust", json=body, headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == [field]
        assert await count(shop, "inventory") == 0
        assert await count(shop, "inventory_movements") == 0


# -- reading stock --------------------------------------------------------------------------


class TestStock:
    async def test_shows_each_variant_and_the_totals_to_anyone(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 10, variant_id="v_red", threshold=2)
        shop.clock.advance(minutes=1)
        await adjust(shop, auth, "p_tee", 5, variant_id="v_blue")
        await adjust(shop, auth, "p_mug", 7)
        await reserve(shop, service_auth(shop), "ord_1", line("p_tee", 3, "v_red"))

        response = await shop.client.get(f"{V1}/p_tee")

        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == STOCK_FIELDS
        assert all(set(variant) == VARIANT_FIELDS for variant in body["variants"])
        updated = [when(variant.pop("updatedAt")) for variant in body["variants"]]
        assert updated == [shop.clock.now(), shop.clock.now()]
        assert body == {
            "productId": "p_tee",
            "stockCount": 15,
            "reserved": 3,
            "available": 12,
            "variants": [
                {"variantId": "v_blue", "stockCount": 5, "reserved": 0, "available": 5, "threshold": 0},
                {"variantId": "v_red", "stockCount": 10, "reserved": 3, "available": 7, "threshold": 2},
            ],
        }

    async def test_stock_of_a_product_as_a_whole_has_a_null_variant(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_mug", 7, threshold=1)

        body = await stock(shop, "p_mug")

        [variant] = body["variants"]
        assert variant["variantId"] is None
        assert (body["stockCount"], body["reserved"], body["available"]) == (7, 0, 7)
        assert (variant["stockCount"], variant["reserved"], variant["available"], variant["threshold"]) == (7, 0, 7, 1)
        assert await stored_item(shop, "p_mug", "") == (7, 0, 1)

    async def test_an_unknown_product_is_404(self, shop: Shop) -> None:
        response = await shop.client.get(f"{V1}/p_nothing")

        assert_error(response, 404, "STOCK_ITEM_NOT_FOUND")

    async def test_ids_that_differ_only_in_case_are_different_items(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 10)

        response = await shop.client.post(
            f"{V1}/adjust", json={"productId": "p_TEE", "delta": 3, "reason": "Restock"}, headers=auth
        )

        assert response.status_code == 200, response.text
        assert await stored_item(shop, "p_tee") == (10, 0, 0)
        assert await stored_item(shop, "p_TEE") == (3, 0, 0)
        assert (await stock(shop, "p_tee"))["stockCount"] == 10


# -- reserve --------------------------------------------------------------------------------


class TestReserve:
    async def test_holds_every_item_for_the_order(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 10, variant_id="v_red")
        await adjust(shop, auth, "p_mug", 4)
        before = len(await events(shop))

        response = await shop.client.post(
            f"{V1}/reserve",
            json={"orderId": "ord_20261125_0001", "items": [line("p_tee", 2, "v_red"), line("p_mug", 4)]},
            headers=service_auth(shop),
        )

        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == RESERVATION_FIELDS
        assert all(set(item) == ITEM_FIELDS for item in body["items"])
        assert when(body.pop("expiresAt")) == shop.clock.now() + timedelta(minutes=15)
        assert body == {
            "orderId": "ord_20261125_0001",
            "status": "RESERVED",
            "items": [
                {"productId": "p_mug", "variantId": None, "quantity": 4, "status": "RESERVED"},
                {"productId": "p_tee", "variantId": "v_red", "quantity": 2, "status": "RESERVED"},
            ],
        }
        assert await stored_item(shop, "p_tee", "v_red") == (10, 2, 0)
        assert await stored_item(shop, "p_mug") == (4, 4, 0)
        assert await stored_reservations(shop, "ord_20261125_0001") == [
            ("p_mug", "", 4, "RESERVED"),
            ("p_tee", "v_red", 2, "RESERVED"),
        ]
        assert await movements(shop, "RESERVE") == [
            ("p_mug", "", "RESERVE", 0, 4, None, "ord_20261125_0001", None),
            ("p_tee", "v_red", "RESERVE", 0, 2, None, "ord_20261125_0001", None),
        ]
        assert (await events(shop))[before:] == [
            payload("p_mug", None, 4, 4, 0, change=-4),
            payload("p_tee", "v_red", 10, 2, 0, change=-2),
        ]
        assert (await stock(shop, "p_tee"))["available"] == 8

    async def test_the_reservation_can_be_read_back(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10)
        reserved = await reserve(shop, orders, "ord_1", line("p_tee", 2))

        response = await shop.client.get(f"{V1}/reservations/ord_1", headers=orders)

        assert response.status_code == 200, response.text
        assert response.json() == reserved
        missing = await shop.client.get(f"{V1}/reservations/ord_none", headers=orders)
        assert_error(missing, 404, "RESERVATION_NOT_FOUND")

    async def test_a_ttl_sets_when_it_expires(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 10)

        body = await reserve(shop, service_auth(shop), "ord_1", line("p_tee", 1), ttlSeconds=60)

        assert when(body["expiresAt"]) == shop.clock.now() + timedelta(seconds=60)
        assert await stored_expiry(shop, "ord_1") == shop.clock.now() + timedelta(seconds=60)

    async def test_an_admin_may_reserve_too(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 10)

        body = await reserve(shop, auth, "ord_1", line("p_tee", 10))

        assert body["status"] == "RESERVED"
        assert await stored_item(shop, "p_tee") == (10, 10, 0)

    async def test_is_all_or_nothing(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_a", 5)
        await adjust(shop, auth, "p_b", 1, variant_id="v_1")
        before = await snapshot(shop)

        response = await shop.client.post(
            f"{V1}/reserve",
            json={"orderId": "ord_1", "items": [line("p_a", 2), line("p_b", 3, "v_1")]},
            headers=service_auth(shop),
        )

        body = assert_error(response, 409, "INSUFFICIENT_STOCK")
        assert body["details"] == [
            {"field": "p_b/v_1", "message": "asked 3, available 1", "type": "insufficient_stock"}
        ]
        assert await snapshot(shop) == before  # p_a not held either, no reservation, movement or event
        assert await stored_item(shop, "p_a") == (5, 0, 0)
        assert await count(shop, "inventory_reservations") == 0

    async def test_names_every_short_item(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_a", 5)
        await adjust(shop, auth, "p_b", 1)
        await adjust(shop, auth, "p_c", 2)
        await reserve(shop, auth, "ord_0", line("p_c", 2))
        before = await snapshot(shop)

        response = await shop.client.post(
            f"{V1}/reserve",
            json={"orderId": "ord_1", "items": [line("p_c", 1), line("p_a", 5), line("p_b", 2)]},
            headers=service_auth(shop),
        )

        body = assert_error(response, 409, "INSUFFICIENT_STOCK")
        assert sorted((d["field"], d["message"]) for d in body["details"]) == [
            ("p_b", "asked 2, available 1"),
            ("p_c", "asked 1, available 0"),
        ]
        assert await snapshot(shop) == before

    async def test_an_unknown_product_is_short_with_nothing_available(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 10)
        before = await snapshot(shop)

        response = await shop.client.post(
            f"{V1}/reserve",
            json={"orderId": "ord_1", "items": [line("p_tee", 1), line("p_ghost", 1)]},
            headers=service_auth(shop),
        )

        body = assert_error(response, 409, "INSUFFICIENT_STOCK")
        assert body["details"] == [
            {"field": "p_ghost", "message": "asked 1, available 0", "type": "insufficient_stock"}
        ]
        assert await snapshot(shop) == before

    async def test_a_variant_is_not_served_from_stock_kept_for_the_product_as_a_whole(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_mug", 10)
        before = await snapshot(shop)

        response = await shop.client.post(
            f"{V1}/reserve", json={"orderId": "ord_1", "items": [line("p_mug", 1, "v_big")]}, headers=auth
        )

        body = assert_error(response, 409, "INSUFFICIENT_STOCK")
        assert fields(body) == ["p_mug/v_big"]
        assert await snapshot(shop) == before

    async def test_asking_again_for_the_same_order_reserves_nothing_more(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10)
        await adjust(shop, auth, "p_mug", 10, variant_id="v_big")
        request = {"orderId": "ord_1", "items": [line("p_tee", 3), line("p_mug", 2, "v_big")]}
        first = await post(shop, orders, "reserve", request)
        before = await snapshot(shop)
        shop.clock.advance(minutes=1)

        again = await post(shop, orders, "reserve", request)
        other = await post(shop, orders, "reserve", {"orderId": "ord_1", "items": [line("p_tee", 7)]})

        assert again == first
        assert other == first  # what the order holds, not what was asked this time
        assert await snapshot(shop) == before
        assert await stored_item(shop, "p_tee") == (10, 3, 0)
        assert await stored_item(shop, "p_mug", "v_big") == (10, 2, 0)
        assert len(await movements(shop, "RESERVE")) == 2

    async def test_the_same_item_twice_is_added_up(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 10, variant_id="v_red")

        body = await reserve(shop, service_auth(shop), "ord_1", line("p_tee", 2, "v_red"), line("p_tee", 3, "v_red"))

        assert [(i["productId"], i["variantId"], i["quantity"]) for i in body["items"]] == [("p_tee", "v_red", 5)]
        assert await stored_item(shop, "p_tee", "v_red") == (10, 5, 0)
        assert await stored_reservations(shop, "ord_1") == [("p_tee", "v_red", 5, "RESERVED")]
        assert await movements(shop, "RESERVE") == [("p_tee", "v_red", "RESERVE", 0, 5, None, "ord_1", None)]

    async def test_lines_that_fit_alone_but_not_together_are_refused(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 4)
        before = await snapshot(shop)

        response = await shop.client.post(
            f"{V1}/reserve",
            json={"orderId": "ord_1", "items": [line("p_tee", 2), line("p_tee", 3)]},
            headers=service_auth(shop),
        )

        body = assert_error(response, 409, "INSUFFICIENT_STOCK")
        assert body["details"][0]["message"] == "asked 5, available 4"
        assert await snapshot(shop) == before

    async def test_never_oversells_across_orders(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 5)
        await reserve(shop, orders, "ord_1", line("p_tee", 3))

        response = await shop.client.post(
            f"{V1}/reserve", json={"orderId": "ord_2", "items": [line("p_tee", 3)]}, headers=orders
        )

        body = assert_error(response, 409, "INSUFFICIENT_STOCK")
        assert body["details"][0]["message"] == "asked 3, available 2"
        await reserve(shop, orders, "ord_3", line("p_tee", 2))
        assert await stored_item(shop, "p_tee") == (5, 5, 0)
        assert await stored_reservations(shop, "ord_2") == []


@SQLITE_ONLY
class TestReserveBadInput:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"orderId": "ord_1", "items": [line("p_tee", 0)]}, "body.items.0.quantity"),
            ({"orderId": "ord_1", "items": [line("p_tee", 10_001)]}, "body.items.0.quantity"),
            ({"orderId": "ord_1", "items": [line("p_tee", -1)]}, "body.items.0.quantity"),
            ({"items": [line("p_tee", 1)]}, "body.orderId"),
            ({"orderId": "", "items": [line("p_tee", 1)]}, "body.orderId"),
            ({"orderId": "ord 1", "items": [line("p_tee", 1)]}, "body.orderId"),
            ({"orderId": "ord_1", "items": [line("tee", 1)]}, "body.items.0.productId"),
            ({"orderId": "ord_1", "items": [line("p_tee!", 1)]}, "body.items.0.productId"),
            ({"orderId": "ord_1", "items": [line("p_tee", 1, "red")]}, "body.items.0.variantId"),
            ({"orderId": "ord_1", "items": [line(f"p_{n}", 1) for n in range(101)]}, "body.items"),
            ({"orderId": "ord_1", "items": []}, "body.items"),
            ({"orderId": "ord_1"}, "body.items"),
            ({"orderId": "ord_1", "items": [line("p_tee", 1)], "priority": "high"}, "body.priority"),
            ({"orderId": "ord_1", "items": [{**line("p_tee", 1), "price": 5}]}, "body.items.0.price"),
            ({"orderId": "ord_1", "items": [line("p_tee", 1)], "ttlSeconds": 0}, "body.ttlSeconds"),
        ],
    )
    async def test_is_refused_and_holds_nothing(self, shop: Shop, body: dict[str, Any], field: str) -> None:
        _, auth = await shop.admin()
        await adjust(shop, auth, "p_tee", 20_000)
        before = await snapshot(shop)

        response = await shop.client.post(f"{V1}/reserve", json=body, headers=service_auth(shop))

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == [field]
        assert await snapshot(shop) == before

    async def test_a_hundred_items_are_allowed(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        for n in range(100):
            await adjust(shop, auth, f"p_{n:03}", 1)

        body = await reserve(shop, service_auth(shop), "ord_1", *[line(f"p_{n:03}", 1) for n in range(100)])

        assert len(body["items"]) == 100
        assert await count(shop, "inventory_reservations") == 100


@SQLITE_ONLY
class TestAuth:
    ROUTES = [
        ("POST", "/reserve", {"orderId": "ord_1", "items": [line("p_tee", 1)]}),
        ("POST", "/release", {"orderId": "ord_1"}),
        ("POST", "/commit", {"orderId": "ord_1"}),
        ("POST", "/adjust", {"productId": "p_tee", "delta": 5, "reason": "Restock"}),
        ("GET", "/reservations/ord_1", None),
    ]

    @pytest.mark.parametrize(("method", "path", "body"), ROUTES)
    async def test_without_a_token_is_401(self, shop: Shop, method: str, path: str, body: Any) -> None:
        before = await snapshot(shop)

        response = await shop.client.request(method, f"{V1}{path}", json=body)

        assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["www-authenticate"] == "Bearer"
        assert await snapshot(shop) == before

    @pytest.mark.parametrize(("method", "path", "body"), ROUTES)
    async def test_a_plain_user_is_403(self, shop: Shop, method: str, path: str, body: Any) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, "p_tee", 10)
        await reserve(shop, admin, "ord_1", line("p_tee", 1))
        _, auth = await shop.user()
        before = await snapshot(shop)

        response = await shop.client.request(method, f"{V1}{path}", json=body, headers=auth)

        assert_error(response, 403, "FORBIDDEN")
        assert await snapshot(shop) == before

    async def test_the_order_service_may_not_adjust(self, shop: Shop) -> None:
        response = await shop.client.post(
            f"{V1}/adjust",
            json={"productId": "p_tee", "delta": 5, "reason": "Restock"},
            headers=service_auth(shop),
        )

        assert_error(response, 403, "FORBIDDEN")
        assert await count(shop, "inventory") == 0

    async def test_a_user_token_may_still_read_stock(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, "p_tee", 10)
        _, auth = await shop.user()

        response = await shop.client.get(f"{V1}/p_tee", headers=auth)

        assert response.status_code == 200
        assert response.json()["stockCount"] == 10

    async def test_a_bad_or_expired_service_token_is_401(self, shop: Shop) -> None:
        expired = shop.platform.tokens.issue("orders", Role.SERVICE, ttl_seconds=60).token
        shop.clock.advance(minutes=2)
        body = {"orderId": "ord_1", "items": [line("p_tee", 1)]}

        for token in (expired, "not-a-jwt"):
            response = await shop.client.post(f"{V1}/reserve", json=body, headers={"Authorization": f"Bearer {token}"})
            assert_error(response, 401, "UNAUTHORIZED")
        assert await count(shop, "inventory_reservations") == 0


# -- release --------------------------------------------------------------------------------


class TestRelease:
    async def test_gives_back_everything_the_order_holds(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10, variant_id="v_red")
        await adjust(shop, auth, "p_mug", 4)
        await reserve(shop, orders, "ord_1", line("p_tee", 2, "v_red"), line("p_mug", 3))
        shop.clock.advance(minutes=1)

        body = await post(shop, orders, "release", {"orderId": "ord_1"})

        assert body["status"] == "RELEASED"
        assert [(i["productId"], i["quantity"], i["status"]) for i in body["items"]] == [
            ("p_mug", 3, "RELEASED"),
            ("p_tee", 2, "RELEASED"),
        ]
        assert await stored_item(shop, "p_tee", "v_red") == (10, 0, 0)
        assert await stored_item(shop, "p_mug") == (4, 0, 0)
        assert await stored_reservations(shop, "ord_1") == [
            ("p_mug", "", 3, "RELEASED"),
            ("p_tee", "v_red", 2, "RELEASED"),
        ]
        assert await movements(shop, "RELEASE") == [
            ("p_mug", "", "RELEASE", 0, -3, None, "ord_1", None),
            ("p_tee", "v_red", "RELEASE", 0, -2, None, "ord_1", None),
        ]
        assert (await events(shop))[-2:] == [
            payload("p_mug", None, 4, 0, 0, change=3),
            payload("p_tee", "v_red", 10, 0, 0, change=2),
        ]
        assert (await stock(shop, "p_tee"))["available"] == 10

    async def test_gives_back_only_the_units_named(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_a", 10)
        await adjust(shop, auth, "p_b", 10, variant_id="v_1")
        await reserve(shop, orders, "ord_1", line("p_a", 5), line("p_b", 2, "v_1"))

        body = await post(shop, orders, "release", {"orderId": "ord_1", "items": [line("p_a", 2)]})

        assert body["status"] == "RESERVED"
        assert [(i["productId"], i["quantity"], i["status"]) for i in body["items"]] == [
            ("p_a", 3, "RESERVED"),
            ("p_b", 2, "RESERVED"),
        ]
        assert await stored_item(shop, "p_a") == (10, 3, 0)
        assert await stored_item(shop, "p_b", "v_1") == (10, 2, 0)
        assert await stored_reservations(shop, "ord_1") == [("p_a", "", 3, "RESERVED"), ("p_b", "v_1", 2, "RESERVED")]
        assert await movements(shop, "RELEASE") == [("p_a", "", "RELEASE", 0, -2, None, "ord_1", None)]

        body = await post(shop, orders, "release", {"orderId": "ord_1", "items": [line("p_b", 2, "v_1")]})

        assert [(i["productId"], i["quantity"], i["status"]) for i in body["items"]] == [
            ("p_a", 3, "RESERVED"),
            ("p_b", 2, "RELEASED"),
        ]
        assert await stored_item(shop, "p_b", "v_1") == (10, 0, 0)

        body = await post(shop, orders, "release", {"orderId": "ord_1"})  # the rest

        assert body["status"] == "RELEASED"
        assert await stored_item(shop, "p_a") == (10, 0, 0)
        assert await stored_reservations(shop, "ord_1") == [("p_a", "", 3, "RELEASED"), ("p_b", "v_1", 2, "RELEASED")]

    async def test_releasing_twice_changes_nothing_more(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10)
        await reserve(shop, orders, "ord_1", line("p_tee", 4))
        first = await post(shop, orders, "release", {"orderId": "ord_1"})
        before = await snapshot(shop)

        again = await post(shop, orders, "release", {"orderId": "ord_1"})

        assert again == first
        assert await snapshot(shop) == before
        assert await stored_item(shop, "p_tee") == (10, 0, 0)

    async def test_releasing_more_than_held_is_400_and_changes_nothing(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_a", 10)
        await adjust(shop, auth, "p_b", 10)
        await reserve(shop, orders, "ord_1", line("p_a", 2), line("p_b", 1))
        before = await snapshot(shop)

        for items in (
            [line("p_a", 3)],
            [line("p_a", 1), line("p_a", 2)],  # added up: 3
            [line("p_b", 1), line("p_c", 1)],  # p_c is not held by the order
            [line("p_a", 1, "v_1")],  # nor is a variant of p_a
        ):
            response = await shop.client.post(
                f"{V1}/release", json={"orderId": "ord_1", "items": items}, headers=orders
            )
            body = assert_error(response, 400, "VALIDATION_FAILED")
            assert fields(body) == ["body.items"], items
            assert await snapshot(shop) == before

    async def test_releasing_named_units_of_a_released_order_is_400(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_a", 10)
        await reserve(shop, orders, "ord_1", line("p_a", 2))
        await post(shop, orders, "release", {"orderId": "ord_1"})
        before = await snapshot(shop)

        response = await shop.client.post(
            f"{V1}/release", json={"orderId": "ord_1", "items": [line("p_a", 1)]}, headers=orders
        )

        assert_error(response, 400, "VALIDATION_FAILED")
        assert await snapshot(shop) == before

    async def test_an_unknown_order_is_404(self, shop: Shop) -> None:
        response = await shop.client.post(f"{V1}/release", json={"orderId": "ord_none"}, headers=service_auth(shop))

        assert_error(response, 404, "RESERVATION_NOT_FOUND")

    async def test_a_released_order_cannot_reserve_again(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10)
        await reserve(shop, orders, "ord_1", line("p_tee", 4))
        released = await post(shop, orders, "release", {"orderId": "ord_1"})

        again = await reserve(shop, orders, "ord_1", line("p_tee", 4))

        assert again == released
        assert await stored_item(shop, "p_tee") == (10, 0, 0)


# -- commit ---------------------------------------------------------------------------------


class TestCommit:
    async def test_sold_units_leave_stock_and_reservation(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10, variant_id="v_red")
        await adjust(shop, auth, "p_mug", 3)
        reserved = await reserve(shop, orders, "ord_1", line("p_tee", 4, "v_red"), line("p_mug", 3))

        body = await post(shop, orders, "commit", {"orderId": "ord_1"})

        assert body == {
            **reserved,
            "status": "COMMITTED",
            "items": [{**item, "status": "COMMITTED"} for item in reserved["items"]],
        }
        assert await stored_item(shop, "p_tee", "v_red") == (6, 0, 0)
        assert await stored_item(shop, "p_mug") == (0, 0, 0)
        assert await stored_reservations(shop, "ord_1") == [
            ("p_mug", "", 3, "COMMITTED"),
            ("p_tee", "v_red", 4, "COMMITTED"),
        ]
        assert await movements(shop, "COMMIT") == [
            ("p_mug", "", "COMMIT", -3, -3, None, "ord_1", None),
            ("p_tee", "v_red", "COMMIT", -4, -4, None, "ord_1", None),
        ]
        assert (await events(shop))[-2:] == [
            payload("p_mug", None, 0, 0, 0, change=0),
            payload("p_tee", "v_red", 6, 0, 0, change=0),
        ]
        tee = await stock(shop, "p_tee")
        assert (tee["stockCount"], tee["reserved"], tee["available"]) == (6, 0, 6)

    @pytest.mark.parametrize("variant_id", ["v_red", None], ids=["a variant", "no variant"])
    async def test_an_order_of_one_item_is_sold_as_any_order_is(self, shop: Shop, variant_id: str | None) -> None:
        """What most checkouts hold (on PostgreSQL sold in one statement of its own): the same
        answer, stored rows and published change as on every backend, a threshold kept."""
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10, variant_id=variant_id, threshold=2)
        reserved = await reserve(shop, orders, "ord_1", line("p_tee", 4, variant_id))

        body = await post(shop, orders, "commit", {"orderId": "ord_1"})

        assert body == {
            **reserved,
            "status": "COMMITTED",
            "items": [{**item, "status": "COMMITTED"} for item in reserved["items"]],
        }
        assert await stored_item(shop, "p_tee", variant_id or "") == (6, 0, 2)
        assert await stored_reservations(shop, "ord_1") == [("p_tee", variant_id or "", 4, "COMMITTED")]
        assert await movements(shop, "COMMIT") == [("p_tee", variant_id or "", "COMMIT", -4, -4, None, "ord_1", None)]
        assert (await events(shop))[-1] == payload("p_tee", variant_id, 6, 0, 2, change=0)
        assert await low_stock(shop) == []

    async def test_committing_twice_sells_once(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10)
        await reserve(shop, orders, "ord_1", line("p_tee", 4))
        first = await post(shop, orders, "commit", {"orderId": "ord_1"})
        before = await snapshot(shop)

        again = await post(shop, orders, "commit", {"orderId": "ord_1"})

        assert again == first
        assert await snapshot(shop) == before
        assert await stored_item(shop, "p_tee") == (6, 0, 0)

    async def test_what_is_left_after_a_partial_release_is_sold(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10)
        await reserve(shop, orders, "ord_1", line("p_tee", 5))
        await post(shop, orders, "release", {"orderId": "ord_1", "items": [line("p_tee", 2)]})

        body = await post(shop, orders, "commit", {"orderId": "ord_1"})

        assert [(i["quantity"], i["status"]) for i in body["items"]] == [(3, "COMMITTED")]
        assert await stored_item(shop, "p_tee") == (7, 0, 0)

    async def test_after_a_full_release_is_409_and_changes_nothing(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10)
        await reserve(shop, orders, "ord_1", line("p_tee", 4))
        await post(shop, orders, "release", {"orderId": "ord_1"})
        before = await snapshot(shop)

        response = await shop.client.post(f"{V1}/commit", json={"orderId": "ord_1"}, headers=orders)

        assert_error(response, 409, "RESERVATION_CLOSED")
        assert await snapshot(shop) == before

    async def test_releasing_a_committed_order_changes_nothing(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10)
        await reserve(shop, orders, "ord_1", line("p_tee", 4))
        committed = await post(shop, orders, "commit", {"orderId": "ord_1"})
        before = await snapshot(shop)

        released = await post(shop, orders, "release", {"orderId": "ord_1"})

        assert released == committed
        assert await snapshot(shop) == before

    async def test_an_unknown_order_is_404(self, shop: Shop) -> None:
        response = await shop.client.post(f"{V1}/commit", json={"orderId": "ord_none"}, headers=service_auth(shop))

        assert_error(response, 404, "RESERVATION_NOT_FOUND")

    async def test_committing_twice_after_releasing_one_line_sells_once(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_a", 10)
        await adjust(shop, auth, "p_b", 10)
        await reserve(shop, orders, "ord_1", line("p_a", 2), line("p_b", 1))
        await post(shop, orders, "release", {"orderId": "ord_1", "items": [line("p_b", 1)]})
        first = await post(shop, orders, "commit", {"orderId": "ord_1"})
        before = await snapshot(shop)

        response = await shop.client.post(f"{V1}/commit", json={"orderId": "ord_1"}, headers=orders)

        assert response.status_code == 200, response.text
        assert response.json() == first
        assert await snapshot(shop) == before


# -- expiry ---------------------------------------------------------------------------------


class TestExpiry:
    async def test_an_expired_reservation_gives_its_units_back(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10, variant_id="v_red")
        await reserve(shop, orders, "ord_1", line("p_tee", 4, "v_red"))
        await reserve(shop, orders, "ord_2", line("p_tee", 6, "v_red"), ttlSeconds=3600)
        shop.clock.advance(minutes=16)
        orders = service_auth(shop)  # a fresh token: the first one expired with the clock
        events_before = len(await events(shop))

        assert await release_expired(shop) == 1

        assert await stored_item(shop, "p_tee", "v_red") == (10, 6, 0)
        assert await stored_reservations(shop, "ord_1") == [("p_tee", "v_red", 4, "EXPIRED")]
        assert await stored_reservations(shop, "ord_2") == [("p_tee", "v_red", 6, "RESERVED")]
        assert await movements(shop, "EXPIRE") == [("p_tee", "v_red", "EXPIRE", 0, -4, None, "ord_1", None)]
        assert (await events(shop))[events_before:] == [payload("p_tee", "v_red", 10, 6, 0, change=4)]
        assert (await stock(shop, "p_tee"))["available"] == 4

        read = await shop.client.get(f"{V1}/reservations/ord_1", headers=orders)
        assert read.json()["status"] == "EXPIRED"
        assert [i["status"] for i in read.json()["items"]] == ["EXPIRED"]

        response = await shop.client.post(f"{V1}/commit", json={"orderId": "ord_1"}, headers=orders)
        assert_error(response, 409, "RESERVATION_CLOSED")
        assert await stored_item(shop, "p_tee", "v_red") == (10, 6, 0)

        assert await release_expired(shop) == 0  # nothing twice
        assert await stored_item(shop, "p_tee", "v_red") == (10, 6, 0)

    async def test_nothing_expires_before_its_time(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10)
        await reserve(shop, orders, "ord_1", line("p_tee", 4))
        shop.clock.advance(minutes=14)

        assert await release_expired(shop) == 0
        orders = service_auth(shop)

        assert await stored_item(shop, "p_tee") == (10, 4, 0)
        committed = await post(shop, orders, "commit", {"orderId": "ord_1"})
        assert committed["status"] == "COMMITTED"
        shop.clock.advance(minutes=10)
        assert await release_expired(shop) == 0  # a committed reservation never expires
        assert await stored_item(shop, "p_tee") == (6, 0, 0)

    async def test_what_is_left_after_a_partial_release_expires(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_a", 10)
        await adjust(shop, auth, "p_b", 10)
        await reserve(shop, orders, "ord_1", line("p_a", 5), line("p_b", 2))
        await post(shop, orders, "release", {"orderId": "ord_1", "items": [line("p_a", 2), line("p_b", 2)]})
        shop.clock.advance(minutes=16)

        assert await release_expired(shop) == 1

        assert await stored_item(shop, "p_a") == (10, 0, 0)
        assert await stored_item(shop, "p_b") == (10, 0, 0)
        assert await stored_reservations(shop, "ord_1") == [("p_a", "", 3, "EXPIRED"), ("p_b", "", 2, "RELEASED")]

    async def test_an_expired_order_does_not_reserve_again(self, shop: Shop) -> None:
        _, auth = await shop.admin()
        orders = service_auth(shop)
        await adjust(shop, auth, "p_tee", 10)
        await reserve(shop, orders, "ord_1", line("p_tee", 4))
        shop.clock.advance(minutes=16)
        await release_expired(shop)

        again = await reserve(shop, service_auth(shop), "ord_1", line("p_tee", 4))

        assert again["status"] == "EXPIRED"
        assert await stored_item(shop, "p_tee") == (10, 0, 0)


# -- both prefixes --------------------------------------------------------------------------


class TestAlias:
    async def test_every_route_answers_the_same_under_api(self, shop: Shop) -> None:
        admin_id, auth = await shop.admin()
        orders = service_auth(shop)

        adjusted = await shop.client.post(
            f"{ALIAS}/adjust", json={"productId": "p_tee", "delta": 10, "reason": "Restock"}, headers=auth
        )
        assert adjusted.status_code == 200, adjusted.text
        assert adjusted.json() == await stock(shop, "p_tee")
        read = await shop.client.get(f"{ALIAS}/p_tee")
        assert read.status_code == 200
        assert read.json() == adjusted.json()

        reserved = await shop.client.post(
            f"{ALIAS}/reserve", json={"orderId": "ord_1", "items": [line("p_tee", 4)]}, headers=orders
        )
        assert reserved.status_code == 200, reserved.text
        assert reserved.json()["status"] == "RESERVED"
        held = await shop.client.get(f"{ALIAS}/reservations/ord_1", headers=orders)
        assert held.json() == reserved.json()
        assert (await shop.client.get(f"{V1}/reservations/ord_1", headers=orders)).json() == reserved.json()

        released = await shop.client.post(
            f"{ALIAS}/release", json={"orderId": "ord_1", "items": [line("p_tee", 1)]}, headers=orders
        )
        assert released.status_code == 200, released.text
        committed = await shop.client.post(f"{ALIAS}/commit", json={"orderId": "ord_1"}, headers=orders)
        assert committed.status_code == 200, committed.text
        assert committed.json()["items"] == [
            {"productId": "p_tee", "variantId": None, "quantity": 3, "status": "COMMITTED"}
        ]
        assert await stored_item(shop, "p_tee") == (7, 0, 0)
        assert [m[2] for m in await movements(shop)] == ["ADJUST", "RESERVE", "RELEASE", "COMMIT"]
        assert (await movements(shop))[0][-1] == admin_id

    @SQLITE_ONLY
    async def test_errors_answer_the_same_under_api(self, shop: Shop) -> None:
        missing = await shop.client.get(f"{ALIAS}/p_none")
        assert_error(missing, 404, "STOCK_ITEM_NOT_FOUND")
        unauthenticated = await shop.client.post(f"{ALIAS}/commit", json={"orderId": "ord_1"})
        assert_error(unauthenticated, 401, "UNAUTHORIZED")
        unknown = await shop.client.post(f"{ALIAS}/commit", json={"orderId": "ord_1"}, headers=service_auth(shop))
        assert_error(unknown, 404, "RESERVATION_NOT_FOUND")
