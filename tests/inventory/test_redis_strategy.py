"""The Redis ("flash-sale") strategy: Redis counters filter reservations, the database stays the
record. Real concurrent clients through the real routes, on each real database, against a Redis
of the test's own that it kills and restarts; afterwards the database's counts are checked
against what the clients were told, and the Redis counter against the database."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text

from tests.conftest import Shop, _empty_tables, shop_settings
from tests.inventory.redis_server import RedisServer
from tests.inventory.test_concurrency import (
    EACH_ALONE_AND_COMBINED,
    VARIANT,
    adjust,
    assert_one_change_per_commit,
    service_auth,
    stock_of,
)
from tienda.app import ALL_MODULES, create_app
from tienda.inventory.schemas import ItemIn
from tienda.inventory.wiring import inventory_service
from tienda.platform.clock import FrozenClock
from tienda.platform.runtime import Platform

ITEM = ("p_hot", "v_hot")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


async def build_shop(backend: str, database_urls: Any, redis_url: str, tmp_path: Path, **extra: Any) -> Shop:
    url = await database_urls.get_url(backend)
    settings = shop_settings(tmp_path, url, redis_url, "tienda-test:", **extra)
    clock = FrozenClock()
    platform = Platform.build(settings, ALL_MODULES, clock=clock)
    await _empty_tables(platform)
    transport = httpx.ASGITransport(app=create_app(settings, platform=platform), client=("203.0.113.7", 40000))
    client = httpx.AsyncClient(transport=transport, base_url="http://shop.test")
    return Shop(client=client, platform=platform, clock=clock, data_dir=tmp_path, settings=settings)


@pytest.fixture
async def shop(
    settings_overrides: dict[str, Any], backend: str, database_urls: Any, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[Shop]:
    """A shop whose every item is reserved through Redis (`TIENDA_INVENTORY_STRATEGY=redis`)."""
    shop = await build_shop(
        backend, database_urls, redis_server.url, tmp_path, inventory_strategy="redis", **settings_overrides
    )
    yield shop
    await shop.client.aclose()
    await shop.platform.close()


async def counter(shop: Shop, item: tuple[str, str] = ITEM) -> tuple[int, int] | None:
    """(available, epoch) of the item's Redis counter; None when Redis has none."""
    flash = inventory_service(shop.platform).flash
    assert flash is not None
    try:
        return await flash.counters.read(item)
    except RedisConnectionError:  # a pooled connection to the Redis before its restart
        return await flash.counters.read(item)


async def stored_epoch(shop: Shop) -> int:
    where = "WHERE product_id = 'p_hot' AND variant_id = 'v_hot'"
    return int(await shop.scalar("inventory", f"SELECT cache_epoch FROM inventory {where}"))


async def reserve(shop: Shop, order: str, quantity: int = 1, **extra: Any) -> int:
    response = await shop.client.post(
        "/api/v1/inventory/reserve",
        json={"orderId": order, "items": [{**VARIANT, "quantity": quantity}], **extra},
        headers=service_auth(shop),
    )
    return response.status_code


async def settle(shop: Shop, verb: str, order: str) -> int:
    response = await shop.client.post(f"/api/v1/inventory/{verb}", json={"orderId": order}, headers=service_auth(shop))
    return response.status_code


async def in_process(shop: Shop, verb: str, **arguments: Any) -> None:
    """A use case called in process (as the order service may), committed as the routes do."""
    service = inventory_service(shop.platform)
    async with shop.platform.db("inventory").uow() as uow:
        try:
            await getattr(service, verb)(uow, **arguments)
            await uow.commit()
        finally:
            if not uow.committed:
                await asyncio.shield(service.abandoned(uow))


async def held_in_reservations(shop: Shop) -> int:
    return int(
        await shop.scalar(
            "inventory", "SELECT COALESCE(SUM(quantity), 0) FROM inventory_reservations WHERE status = 'RESERVED'"
        )
    )


async def assert_redis_agrees(shop: Shop) -> None:
    """The row's reserved units are exactly those of the open reservations, never more than the
    stock; and the counter (loaded by a reservation that cannot be met, if it had expired or
    been dropped) holds what the database has available, at the row's epoch."""
    stock, reserved = await stock_of(shop)
    assert 0 <= reserved <= stock
    assert reserved == await held_in_reservations(shop)
    assert await reserve(shop, "ord_probe", 10_000) == 409
    assert await counter(shop) == (stock - reserved, await stored_epoch(shop))


class TestFlashSale:
    @EACH_ALONE_AND_COMBINED
    async def test_two_hundred_concurrent_reservations_take_exactly_the_fifty_in_stock(
        self, shop: Shop, settings_overrides: dict[str, Any]
    ) -> None:
        _, admin = await shop.admin()
        assert (await adjust(shop, admin, 50)).status_code == 200

        statuses = Counter(await asyncio.gather(*(reserve(shop, f"ord_{n:04d}") for n in range(200))))

        assert statuses == {200: 50, 409: 150}
        assert await stock_of(shop) == (50, 50)
        orders = await shop.scalar("inventory", "SELECT COUNT(DISTINCT order_id) FROM inventory_reservations")
        assert (await held_in_reservations(shop), int(orders)) == (50, 50)
        moved = await shop.scalar(
            "inventory", "SELECT COALESCE(SUM(reserved_delta), 0) FROM inventory_movements WHERE kind = 'RESERVE'"
        )
        assert int(moved) == 50
        # The restock, then one change per statement; the 150 refused wrote nothing.
        updates = await shop.events("inventory", "inventory.updated")
        assert_one_change_per_commit(
            updates, stock=50, each_alone=settings_overrides["reservations_per_statement"] == 1
        )
        assert len(await shop.events("inventory", "inventory.low_stock")) == 1
        assert await counter(shop) == (0, await stored_epoch(shop))  # Redis refused the 150 itself
        await assert_redis_agrees(shop)

    async def test_an_order_asked_for_again_gets_what_it_holds_even_once_sold_out(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 3)
        assert await reserve(shop, "ord_a", 2) == 200
        assert await reserve(shop, "ord_b", 1) == 200  # sold out

        again = await shop.client.post(
            "/api/v1/inventory/reserve",
            json={"orderId": "ord_a", "items": [{**VARIANT, "quantity": 2}]},
            headers=service_auth(shop),
        )
        flash = inventory_service(shop.platform).flash
        assert flash is not None
        await flash.counters.forget_order("ord_b")  # its mark gone (60 s later): Redis refuses it
        later = await shop.client.post(
            "/api/v1/inventory/reserve",
            json={"orderId": "ord_b", "items": [{**VARIANT, "quantity": 1}]},
            headers=service_auth(shop),
        )

        assert (again.status_code, later.status_code) == (200, 200)
        assert [i["quantity"] for i in again.json()["items"]] == [2]
        assert [i["quantity"] for i in later.json()["items"]] == [1]
        assert await stock_of(shop) == (3, 3)
        assert await held_in_reservations(shop) == 3
        await assert_redis_agrees(shop)

    async def test_a_refusal_names_the_short_item_and_changes_nothing(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 2)
        assert await reserve(shop, "ord_a", 2) == 200

        response = await shop.client.post(
            "/api/v1/inventory/reserve",
            json={"orderId": "ord_b", "items": [{**VARIANT, "quantity": 1}, {"productId": "p_none", "quantity": 1}]},
            headers=service_auth(shop),
        )

        assert response.status_code == 409
        assert response.json()["code"] == "INSUFFICIENT_STOCK"
        assert {(d["field"], d["message"]) for d in response.json()["details"]} == {
            ("p_hot/v_hot", "asked 1, available 0"),
            ("p_none", "asked 1, available 0"),
        }
        assert await stock_of(shop) == (2, 2)
        await assert_redis_agrees(shop)

    async def test_the_same_order_asked_for_concurrently_is_reserved_once(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 10)

        statuses = await asyncio.gather(*(reserve(shop, "ord_same", 3) for _ in range(20)))

        assert set(statuses) == {200}
        assert await stock_of(shop) == (10, 3)
        await assert_redis_agrees(shop)  # the duplicates gave back what they took in Redis

    async def test_a_mix_of_reserve_release_commit_expiry_and_adjust_keeps_redis_and_the_database_agreeing(
        self, shop: Shop
    ) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 40)
        rng = random.Random(11)
        orders = [f"ord_mix_{n:03d}" for n in range(80)]

        async def reserve_one(order: str) -> None:
            await reserve(shop, order, rng.randint(1, 3), **rng.choice([{}, {"ttlSeconds": 60}]))

        async def settle_one(order: str) -> None:
            await asyncio.sleep(rng.random() / 50)
            await settle(shop, rng.choice(["release", "commit", "commit"]), order)

        async def restock() -> None:
            await asyncio.sleep(rng.random() / 50)
            await adjust(shop, admin, rng.choice([5, -3, 10, -8]), "stock count")

        async def sweep() -> None:
            await asyncio.sleep(rng.random() / 50)
            await shop.platform.jobs.run_all_once()

        work = [reserve_one(o) for o in orders] + [settle_one(o) for o in orders[::2]]
        work += [restock() for _ in range(15)] + [sweep() for _ in range(3)]
        rng.shuffle(work)
        await asyncio.gather(*work[: len(work) // 2])
        shop.clock.advance(minutes=2)  # the 60-second reservations of the first half expire in the sweeps
        await asyncio.gather(*work[len(work) // 2 :])
        await shop.platform.jobs.run_all_once()

        stock, reserved = await stock_of(shop)
        committed = await shop.scalar(
            "inventory", "SELECT COALESCE(SUM(quantity), 0) FROM inventory_reservations WHERE status = 'COMMITTED'"
        )
        adjusted = await shop.scalar(
            "inventory", "SELECT COALESCE(SUM(stock_delta), 0) FROM inventory_movements WHERE kind = 'ADJUST'"
        )
        moved_reserved = await shop.scalar(
            "inventory", "SELECT COALESCE(SUM(reserved_delta), 0) FROM inventory_movements"
        )
        assert reserved == int(moved_reserved)
        assert stock == int(adjusted) - int(committed)
        await assert_redis_agrees(shop)
        last = (await shop.events("inventory", "inventory.updated"))[-1]
        assert (last["stockCount"], last["reserved"]) == (stock, reserved)


class TestRedisRestart:
    async def test_counters_lost_in_a_restart_come_back_from_the_database(
        self, shop: Shop, redis_server: RedisServer
    ) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 50)
        first = Counter(await asyncio.gather(*(reserve(shop, f"ord_a{n:03d}") for n in range(30))))
        assert first == {200: 30}
        assert await settle(shop, "release", "ord_a000") == 200
        await assert_redis_agrees(shop)

        redis_server.restart()
        assert await counter(shop) is None  # every key is gone

        second = Counter(await asyncio.gather(*(reserve(shop, f"ord_b{n:03d}") for n in range(200))))
        releases = await asyncio.gather(*(settle(shop, "release", f"ord_a{n:03d}") for n in range(1, 11)))

        assert second == {200: 21, 409: 179}  # 50 - 29 still held
        assert set(releases) == {200}
        assert await stock_of(shop) == (50, 40)
        await assert_redis_agrees(shop)

    async def test_a_crash_in_the_middle_of_a_sale_cannot_oversell_and_the_counts_agree_again(
        self, shop: Shop, redis_server: RedisServer
    ) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 60)

        async def crash() -> None:
            await asyncio.sleep(0.05)
            redis_server.kill()
            await asyncio.sleep(0.05)
            redis_server.start()

        results = await asyncio.gather(
            *(reserve(shop, f"ord_c{n:03d}") for n in range(150)),
            *(settle(shop, "release", f"ord_c{n:03d}") for n in range(0, 150, 5)),
            crash(),
        )
        reserved_ok = Counter(results[:150])

        assert set(reserved_ok) <= {200, 409}
        assert reserved_ok[200] <= 60 + 30  # what was released may be sold again, never more
        stock, reserved = await stock_of(shop)
        assert (stock, reserved) == (60, await held_in_reservations(shop))
        assert reserved <= stock

        # After the crash: reservations and releases go on, and Redis agrees with the database again.
        more = Counter(await asyncio.gather(*(reserve(shop, f"ord_d{n:03d}") for n in range(100))))
        await asyncio.gather(*(settle(shop, "release", f"ord_d{n:03d}") for n in range(0, 100, 10)))
        assert more[200] == 60 - reserved
        await assert_redis_agrees(shop)

    async def test_while_redis_is_down_reservations_use_the_database_and_the_counter_catches_up(
        self, shop: Shop, redis_server: RedisServer
    ) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 10)
        assert await reserve(shop, "ord_1", 2) == 200
        epoch = await stored_epoch(shop)

        # With Redis down the routes answer 500 (the platform checks token revocation in Redis),
        # so the order service's in-process calls and the expiry job are what still run.
        redis_server.kill()
        await in_process(
            shop, "reserve", order_id="ord_2", items=[ItemIn(product_id="p_hot", variant_id="v_hot", quantity=3)]
        )
        await in_process(shop, "release", order_id="ord_1", items=None)
        assert await stock_of(shop) == (10, 3)
        assert await stored_epoch(shop) > epoch  # the counter of before is known to be out of date
        redis_server.start()

        assert await reserve(shop, "ord_3", 7) == 200
        assert await reserve(shop, "ord_4", 1) == 409
        assert await stock_of(shop) == (10, 10)
        await assert_redis_agrees(shop)

    async def test_a_release_that_cannot_reach_redis_outdates_the_counter(
        self, shop: Shop, redis_server: RedisServer
    ) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 4)
        assert await reserve(shop, "ord_1", 4) == 200
        epoch = await stored_epoch(shop)
        assert await counter(shop) == (0, epoch)
        flash = inventory_service(shop.platform).flash
        assert flash is not None

        redis_server.kill()
        await in_process(shop, "release", order_id="ord_1", items=None)
        assert await stored_epoch(shop) == epoch + 1
        redis_server.start()
        await flash.counters.load(ITEM, 0, epoch)  # as if the counter had outlived the crash

        assert await reserve(shop, "ord_2", 4) == 200  # the refusal is checked against the row
        assert await stock_of(shop) == (4, 4)
        await assert_redis_agrees(shop)


class TestACancelledRequest:
    async def test_gives_back_what_it_took_in_redis(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 5)
        other_item = {"productId": "p_other", "delta": 5, "reason": "restock"}
        assert (await shop.client.post("/api/v1/inventory/adjust", json=other_item, headers=admin)).status_code == 200
        assert await reserve(shop, "ord_1", 1) == 200
        body = {"orderId": "ord_0", "items": [{"productId": "p_other", "quantity": 1}]}
        answer = await shop.client.post("/api/v1/inventory/reserve", json=body, headers=service_auth(shop))
        assert answer.status_code == 200  # its counter loaded (a load would wait for SQLite's lock)
        assert await settle(shop, "release", "ord_0") == 200
        epoch = await stored_epoch(shop)
        # Two items: one transaction on every database, which the cancellation rolls back.
        items = [ItemIn(product_id="p_hot", variant_id="v_hot", quantity=2), ItemIn(product_id="p_other", quantity=1)]

        async with shop.platform.db("inventory").engine.connect() as other:
            # Another transaction holds the stock row: the reservation waits in the database
            # after taking its units in Redis, and its client goes away meanwhile.
            await other.execute(text("UPDATE inventory SET threshold = threshold WHERE product_id = 'p_hot'"))
            waiting = asyncio.create_task(in_process(shop, "reserve", order_id="ord_2", items=items))
            await until_counter_is(shop, (2, epoch))
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            await other.rollback()

        await until_counter_is(shop, (4, epoch))  # the give-back runs on, shielded from the cancellation
        assert await stock_of(shop) == (5, 1)
        assert await held_in_reservations(shop) == 1
        await assert_redis_agrees(shop)

    @pytest.mark.parametrize("backend", ["postgres"], indirect=True)
    async def test_whose_one_statement_was_under_way_keeps_the_reservation_and_its_units(self, shop: Shop) -> None:
        """One item on PostgreSQL: the statement, which other requests' reservations may share,
        runs on once begun; the units it took in Redis stay taken, as the database holds them."""
        _, admin = await shop.admin()
        await adjust(shop, admin, 5)
        assert await reserve(shop, "ord_1", 1) == 200
        epoch = await stored_epoch(shop)
        item = ItemIn(product_id="p_hot", variant_id="v_hot", quantity=2)

        async with shop.platform.db("inventory").engine.connect() as other:
            await other.execute(text("UPDATE inventory SET threshold = threshold WHERE product_id = 'p_hot'"))
            waiting = asyncio.create_task(in_process(shop, "reserve", order_id="ord_2", items=[item]))
            await until_counter_is(shop, (2, epoch))
            waiting.cancel()
            await asyncio.sleep(0.05)
            assert not waiting.done()  # it waits for the statement it began
            await other.rollback()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting

        assert await stock_of(shop) == (5, 3)
        assert await held_in_reservations(shop) == 3
        assert await counter(shop) == (2, epoch)
        await assert_redis_agrees(shop)


async def until_counter_is(shop: Shop, expected: tuple[int, int]) -> None:
    for _ in range(500):
        if await counter(shop) == expected:
            return
        await asyncio.sleep(0.01)
    assert await counter(shop) == expected


class TestAWrongCounterCannotOversell:
    async def test_a_counter_that_says_too_much_is_overruled_by_the_database_and_reloaded(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 5)
        assert await reserve(shop, "ord_1", 1) == 200
        flash = inventory_service(shop.platform).flash
        assert flash is not None
        await flash.counters.redis.hset(flash.counters.key(ITEM), "a", 1000)  # corrupted

        assert await reserve(shop, "ord_2", 10) == 409  # the database's guarded UPDATE refuses

        assert await stock_of(shop) == (5, 1)
        ttl = await flash.counters.redis.pttl(flash.counters.key(ITEM))
        assert 0 < ttl <= 1000  # doubted: reloaded within a second
        await flash.counters.redis.pexpire(flash.counters.key(ITEM), 1)
        await asyncio.sleep(0.01)
        assert await reserve(shop, "ord_3", 4) == 200
        assert await reserve(shop, "ord_4", 1) == 409
        await assert_redis_agrees(shop)

    async def test_a_counter_left_behind_by_a_database_strategy_change_is_noticed(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 5)
        assert await reserve(shop, "ord_1", 5) == 200
        assert await counter(shop) == (0, await stored_epoch(shop))
        # Another process, still on the database strategy, releases: the row's epoch moves on.
        async with shop.platform.db("inventory").uow() as uow:
            await (
                inventory_service(shop.platform).__class__(clock=shop.clock).release(uow, order_id="ord_1", items=None)
            )
            await uow.commit()
        assert (await counter(shop) or (None,))[0] == 0  # still says sold out

        assert await reserve(shop, "ord_2", 5) == 200  # the refusal is checked against the row

        assert await stock_of(shop) == (5, 5)
        await assert_redis_agrees(shop)


class TestHotItemsOnly:
    async def test_only_the_items_listed_go_through_redis(
        self, backend: str, database_urls: Any, redis_server: RedisServer, tmp_path: Path
    ) -> None:
        shop = await build_shop(
            backend, database_urls, redis_server.url, tmp_path, inventory_redis_items=["p_hot/v_hot"]
        )
        try:
            _, admin = await shop.admin()
            await adjust(shop, admin, 3)
            await shop.client.post(
                "/api/v1/inventory/adjust",
                json={"productId": "p_cold", "delta": 3, "reason": "restock"},
                headers=admin,
            )
            body = {"orderId": "ord_1", "items": [{**VARIANT, "quantity": 2}, {"productId": "p_cold", "quantity": 2}]}
            response = await shop.client.post("/api/v1/inventory/reserve", json=body, headers=service_auth(shop))

            assert response.status_code == 200
            assert await counter(shop) == (1, await stored_epoch(shop))
            assert await counter(shop, ("p_cold", "")) is None
        finally:
            await shop.client.aclose()
            await shop.platform.close()
