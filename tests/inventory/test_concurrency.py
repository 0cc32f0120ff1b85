"""No oversell, proven with real concurrent clients on each real database: many requests at
once, each on its own connection, through the real routes; then what is stored is checked
against what the clients were told."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import Shop
from tienda.platform.auth import Role

VARIANT = {"productId": "p_hot", "variantId": "v_hot"}


def service_auth(shop: Shop) -> dict[str, str]:
    return {"Authorization": f"Bearer {shop.platform.tokens.issue('orders', Role.SERVICE).token}"}


async def stock_of(shop: Shop) -> tuple[int, int]:
    """(stock_count, reserved_count) of the hot variant as stored."""
    where = "WHERE product_id = 'p_hot' AND variant_id = 'v_hot'"
    stock = await shop.scalar("inventory", f"SELECT stock_count FROM inventory {where}")
    reserved = await shop.scalar("inventory", f"SELECT reserved_count FROM inventory {where}")
    return int(stock), int(reserved)


async def adjust(shop: Shop, admin: dict[str, str], delta: int, reason: str = "restock") -> Any:
    return await shop.client.post(
        "/api/v1/inventory/adjust", json={**VARIANT, "delta": delta, "reason": reason}, headers=admin
    )


class TestNoOversell:
    async def test_two_hundred_concurrent_reservations_take_exactly_the_fifty_in_stock(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        assert (await adjust(shop, admin, 50)).status_code == 200
        caller = service_auth(shop)

        async def reserve(n: int) -> int:
            response = await shop.client.post(
                "/api/v1/inventory/reserve",
                json={"orderId": f"ord_{n:04d}", "items": [{**VARIANT, "quantity": 1}]},
                headers=caller,
            )
            return response.status_code

        statuses = Counter(await asyncio.gather(*(reserve(n) for n in range(200))))

        assert statuses == {200: 50, 409: 150}
        assert await stock_of(shop) == (50, 50)
        held = await shop.scalar(
            "inventory", "SELECT COALESCE(SUM(quantity), 0) FROM inventory_reservations WHERE status = 'RESERVED'"
        )
        orders = await shop.scalar("inventory", "SELECT COUNT(DISTINCT order_id) FROM inventory_reservations")
        assert (int(held), int(orders)) == (50, 50)
        moved = await shop.scalar(
            "inventory", "SELECT COALESCE(SUM(reserved_delta), 0) FROM inventory_movements WHERE kind = 'RESERVE'"
        )
        assert int(moved) == 50
        updates = await shop.events("inventory", "inventory.updated")
        assert len(updates) == 51  # the restock and one per reservation
        assert sorted(u["available"] for u in updates[1:]) == list(range(50))  # each unit handed out once
        assert len(await shop.events("inventory", "inventory.low_stock")) == 1  # sold out, once

    async def test_the_same_order_asked_for_concurrently_is_reserved_once(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 10)
        caller = service_auth(shop)
        body = {"orderId": "ord_same", "items": [{**VARIANT, "quantity": 3}]}

        responses = await asyncio.gather(
            *(shop.client.post("/api/v1/inventory/reserve", json=body, headers=caller) for _ in range(20))
        )

        assert {r.status_code for r in responses} == {200}
        assert {r.json()["items"][0]["quantity"] for r in responses} == {3}
        assert await stock_of(shop) == (10, 3)

    async def test_a_mix_of_reserve_release_commit_and_adjust_keeps_every_count_true(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 40)
        caller = service_auth(shop)
        rng = random.Random(7)
        orders = [f"ord_mix_{n:03d}" for n in range(60)]

        async def reserve(order: str) -> None:
            await shop.client.post(
                "/api/v1/inventory/reserve",
                json={"orderId": order, "items": [{**VARIANT, "quantity": rng.randint(1, 3)}]},
                headers=caller,
            )

        async def settle(order: str) -> None:
            await asyncio.sleep(rng.random() / 50)
            verb = rng.choice(["release", "commit", "commit"])
            await shop.client.post(f"/api/v1/inventory/{verb}", json={"orderId": order}, headers=caller)

        async def restock() -> None:
            await asyncio.sleep(rng.random() / 50)
            await adjust(shop, admin, rng.choice([5, -3, 10, -8]), "stock count")

        work = [reserve(o) for o in orders] + [settle(o) for o in orders[::2]] + [restock() for _ in range(15)]
        rng.shuffle(work)
        await asyncio.gather(*work)

        stock, reserved = await stock_of(shop)
        committed = await shop.scalar(
            "inventory", "SELECT COALESCE(SUM(quantity), 0) FROM inventory_reservations WHERE status = 'COMMITTED'"
        )
        still_held = await shop.scalar(
            "inventory", "SELECT COALESCE(SUM(quantity), 0) FROM inventory_reservations WHERE status = 'RESERVED'"
        )
        adjusted = await shop.scalar(
            "inventory", "SELECT COALESCE(SUM(stock_delta), 0) FROM inventory_movements WHERE kind = 'ADJUST'"
        )
        moved_stock = await shop.scalar("inventory", "SELECT COALESCE(SUM(stock_delta), 0) FROM inventory_movements")
        moved_reserved = await shop.scalar(
            "inventory", "SELECT COALESCE(SUM(reserved_delta), 0) FROM inventory_movements"
        )
        assert 0 <= reserved <= stock
        assert reserved == int(still_held) == int(moved_reserved)
        assert stock == int(adjusted) - int(committed) == int(moved_stock)
        last = (await shop.events("inventory", "inventory.updated"))[-1]
        assert (last["stockCount"], last["reserved"]) == (stock, reserved)


class TestTheDatabaseRefusesAnOversellItself:
    async def test_a_write_that_skips_the_guard_is_refused_by_the_check_constraint(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 5)

        with pytest.raises(DBAPIError, match=r"(?i)check|constraint"):
            async with shop.platform.db("inventory").engine.begin() as conn:
                await conn.execute(text("UPDATE inventory SET reserved_count = 6 WHERE product_id = 'p_hot'"))
        assert await stock_of(shop) == (5, 0)
