"""No oversell, proven with real concurrent clients on each real database: many requests at
once, each on its own connection, through the real routes; then what is stored is checked
against what the clients were told. On PostgreSQL the reservations of one item that a process
makes at the same time share statements (`reservations_per_statement`); the tests of the hot
item run with them each alone and combined (`EACH_ALONE_AND_COMBINED`)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import Shop
from tests.inventory import support
from tests.platform.test_outbox import _statements_run
from tienda.inventory.client import InProcessInventoryClient
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


EACH_ALONE_AND_COMBINED = pytest.mark.parametrize(
    "settings_overrides",
    [{"reservations_per_statement": 1}, {"reservations_per_statement": 100}],
    ids=["each-alone", "combined"],
    indirect=True,
)
"""On PostgreSQL, reservations of one item that a process makes at the same time each alone
(many statements racing for the row) and combined into shared statements."""


def assert_one_change_per_commit(updates: list[dict[str, Any]], *, stock: int, each_alone: bool) -> None:
    """Each published change of the row after the restock is a later state than the one before
    it, the last with every unit held; reservations made each alone publish one change each."""
    reserved = [u["reserved"] for u in updates[1:]]
    assert reserved == sorted(set(reserved))
    assert reserved[-1] == stock
    assert all(u["available"] == u["stockCount"] - u["reserved"] for u in updates)
    if each_alone:
        assert reserved == list(range(1, stock + 1))  # each unit handed out once


class TestNoOversell:
    @EACH_ALONE_AND_COMBINED
    async def test_two_hundred_concurrent_reservations_take_exactly_the_fifty_in_stock(
        self, shop: Shop, settings_overrides: dict[str, Any]
    ) -> None:
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
        each_alone = settings_overrides["reservations_per_statement"] == 1
        assert_one_change_per_commit(updates, stock=50, each_alone=each_alone)
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

    @pytest.mark.parametrize("backend", ["postgres"], indirect=True)
    async def test_reservations_made_at_the_same_time_share_statements(self, shop: Shop) -> None:
        """On PostgreSQL a process puts the reservations of one item that wait for the row into
        shared statements: every order still gets its own reservation and audit row, and an
        order asked for again in the same batch gets what it held."""
        _, admin = await shop.admin()
        await adjust(shop, admin, 1000)
        caller = service_auth(shop)

        async def reserve(order: str) -> dict[str, Any]:
            response = await shop.client.post(
                "/api/v1/inventory/reserve",
                json={"orderId": order, "items": [{**VARIANT, "quantity": 2}]},
                headers=caller,
            )
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = response.json()
            return answer

        first = await reserve("ord_early")
        orders = [f"ord_{n:04d}" for n in range(200)] + ["ord_early"] * 3
        random.Random(7).shuffle(orders)
        answers = await asyncio.gather(*(reserve(order) for order in orders))

        assert {a["orderId"] for a in answers} == set(orders)
        assert all(a["items"] == first["items"] and a["status"] == "RESERVED" for a in answers)
        assert [a["expiresAt"] for a in answers if a["orderId"] == "ord_early"] == [first["expiresAt"]] * 3
        assert await stock_of(shop) == (1000, 402)
        rows = await shop.scalar("inventory", "SELECT COUNT(*) FROM inventory_reservations WHERE quantity = 2")
        moved = await shop.scalar("inventory", "SELECT COUNT(*) FROM inventory_movements WHERE kind = 'RESERVE'")
        assert (int(rows), int(moved)) == (201, 201)
        updates = await shop.events("inventory", "inventory.updated")
        assert_one_change_per_commit(updates, stock=402, each_alone=False)
        assert len(updates) - 2 < 200 / 4  # the restock and ord_early, then far fewer changes than orders

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


WAITING_TO_HOLD = {
    "postgresql": "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE inventory SET reserved_count%'",
    "mysql": "SELECT COUNT(*) FROM information_schema.processlist WHERE db = DATABASE()"
    " AND info LIKE 'UPDATE inventory SET reserved_count%'",
}
"""Whether a reservation waits in its guarded UPDATE of a stock row (information_schema.innodb_trx
of MariaDB 10.11 leaves out a waiting transaction that has written rows)."""


class TestADeadlockIsRunAgain:
    @pytest.mark.parametrize("backend", ["postgres", "mysql"], indirect=True)
    async def test_a_reservation_the_database_gives_up_for_a_deadlock_is_run_again_from_the_start(
        self, shop: Shop
    ) -> None:
        """A rival transaction holds the second of the order's two stock rows, which the
        reservation waits for while it holds the first, and then asks for the first: a
        deadlock, which the database ends by rolling the reservation back (InnoDB gives up the
        transaction that changed fewer rows; PostgreSQL the one whose wait began first). The
        reservation is run again and answered as if nothing happened."""
        _, admin = await shop.admin()
        other = {"productId": "p_other", "variantId": "v_other"}
        for item in (VARIANT, other):
            response = await shop.client.post(
                "/api/v1/inventory/adjust", json={**item, "delta": 10, "reason": "restock"}, headers=admin
            )
            assert response.status_code == 200
        db = shop.platform.db("inventory")
        now = shop.clock.now()
        async with db.engine.connect() as rival:
            rivalry = await rival.begin()
            for _ in range(20):  # the heavier transaction, for InnoDB
                await rival.execute(
                    text(
                        "INSERT INTO inventory_movements (product_id, variant_id, kind, stock_delta, reserved_delta,"
                        " created_at) VALUES ('p_other', 'v_other', 'ADJUST', 0, 0, :now)"
                    ),
                    {"now": now},
                )
            await rival.execute(text("SELECT stock_count FROM inventory WHERE product_id = 'p_other' FOR UPDATE"))
            reserving = asyncio.create_task(
                shop.client.post(
                    "/api/v1/inventory/reserve",
                    json={"orderId": "ord_dl", "items": [{**VARIANT, "quantity": 2}, {**other, "quantity": 1}]},
                    headers=service_auth(shop),
                )
            )
            while not await shop.scalar("inventory", WAITING_TO_HOLD[db.dialect]):  # p_hot held, p_other asked
                assert not reserving.done(), reserving.result().text
                await asyncio.sleep(0.01)
            await rival.execute(text("SELECT stock_count FROM inventory WHERE product_id = 'p_hot' FOR UPDATE"))
            # ... went through: the reservation was the one rolled back, and gave its row up.
            await rivalry.rollback()
        response = await reserving

        assert response.status_code == 200, response.text
        assert [(i["productId"], i["quantity"]) for i in response.json()["items"]] == [("p_hot", 2), ("p_other", 1)]
        assert await stock_of(shop) == (10, 2)
        rows = await shop.scalar("inventory", "SELECT COUNT(*) FROM inventory_reservations WHERE order_id = 'ord_dl'")
        moved = await shop.scalar("inventory", "SELECT COUNT(*) FROM inventory_movements WHERE kind = 'RESERVE'")
        assert (int(rows), int(moved)) == (2, 2)
        updates = await shop.events("inventory", "inventory.updated")
        assert [(u["productId"], u["reserved"]) for u in updates[2:]] == [("p_hot", 2), ("p_other", 1)]


class TestReadsTogether:
    async def test_stock_reads_asked_at_once_go_in_one_statement_and_each_gets_its_own(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        products = [f"p_read_{n}" for n in range(12)]
        for n, product_id in enumerate(products):
            await support.adjust(shop, admin, product_id, n + 1, variant_id="v_1")
        await support.adjust(shop, admin, products[0], 7, variant_id="v_2")
        client = InProcessInventoryClient(shop.platform)

        async with _statements_run([shop.platform.db("inventory")]) as taken:
            answers = await asyncio.gather(*(client.available([p, "p_unknown"]) for p in products))
            run = await taken()

        assert answers[0] == {(products[0], "v_1"): 1, (products[0], "v_2"): 7}
        assert answers[1:] == [{(p, "v_1"): n + 2} for n, p in enumerate(products[1:])]
        assert len([statement for statement in run if "FROM inventory" in statement]) == 1, run
        # and a read alone is a statement of its own, as fresh as any
        await support.adjust(shop, admin, products[5], 4, variant_id="v_1")
        assert await client.available([products[5]]) == {(products[5], "v_1"): 10}
