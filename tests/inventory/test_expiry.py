"""Reservations that are not committed in time give their units back, by the worker's job."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Shop
from tests.inventory.test_concurrency import VARIANT, adjust, service_auth, stock_of
from tienda.inventory import repository
from tienda.inventory.models import Reservation
from tienda.platform.jobs import Job, JobRunner


async def sweep(shop: Shop) -> int:
    """Runs every scheduled job once (other modules have theirs); returns what inventory's released."""
    return (await shop.platform.jobs.run_all_once())["inventory.release_expired"]


class TestExpiry:
    async def test_the_sweep_releases_what_was_not_committed_in_time(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 5)
        caller = service_auth(shop)
        for order, ttl in (("ord_slow", None), ("ord_quick", 60), ("ord_paid", None)):
            body = {"orderId": order, "items": [{**VARIANT, "quantity": 1}]} | ({"ttlSeconds": ttl} if ttl else {})
            assert (await shop.client.post("/api/v1/inventory/reserve", json=body, headers=caller)).status_code == 200
        await shop.client.post("/api/v1/inventory/commit", json={"orderId": "ord_paid"}, headers=caller)

        shop.clock.advance(minutes=2)
        assert await sweep(shop) == 1  # ord_quick only
        shop.clock.advance(minutes=14)
        assert await sweep(shop) == 1  # then ord_slow
        assert await sweep(shop) == 0

        assert await stock_of(shop) == (4, 0)  # one sold, two back on the shelf
        caller = service_auth(shop)  # the first token expired with the clock
        slow = await shop.client.get("/api/v1/inventory/reservations/ord_slow", headers=caller)
        assert slow.json()["status"] == "EXPIRED"
        late = await shop.client.post("/api/v1/inventory/commit", json={"orderId": "ord_slow"}, headers=caller)
        assert late.status_code == 409
        assert late.json()["code"] == "RESERVATION_CLOSED"
        expired = await shop.scalar("inventory", "SELECT COUNT(*) FROM inventory_movements WHERE kind = 'EXPIRE'")
        assert int(expired) == 2


@pytest.mark.parametrize("backend", ["postgres", "mysql"], indirect=True)
class TestExpiryBesideAReservation:
    async def test_a_reservation_holding_the_stock_row_and_the_sweep_holding_an_expired_one_both_commit(
        self, shop: Shop
    ) -> None:
        """The interleaving that deadlocked on MariaDB, step by step: a reservation of an item
        has taken its stock row and has yet to insert its own row, while the sweep has taken an
        expired reservation of the same item and waits for that stock row."""
        _, admin = await shop.admin()
        await adjust(shop, admin, 5)
        body = {"orderId": "ord_old", "items": [{**VARIANT, "quantity": 1}], "ttlSeconds": 60}
        caller = service_auth(shop)
        assert (await shop.client.post("/api/v1/inventory/reserve", json=body, headers=caller)).status_code == 200
        shop.clock.advance(minutes=2)
        now = shop.clock.now()
        db = shop.platform.db("inventory")
        product_id, variant_id = VARIANT["productId"], VARIANT["variantId"]

        async with db.uow() as reserving, db.uow() as sweeping:
            assert await repository.hold(reserving.session, product_id, variant_id, 1, now) is not None
            [old] = await repository.expired(sweeping.session, now, 500)
            assert old.order_id == "ord_old"
            unholding = asyncio.create_task(repository.unhold(sweeping.session, product_id, variant_id, 1, now))
            await asyncio.sleep(0.3)
            assert not unholding.done()  # it waits for the reservation's lock of the stock row
            reserving.session.add(
                Reservation(
                    order_id="ord_new",
                    product_id=product_id,
                    variant_id=variant_id,
                    quantity=1,
                    status="RESERVED",
                    expires_at=shop.clock.now().replace(year=now.year + 1),
                    created_at=now,
                    updated_at=now,
                )
            )
            await reserving.session.flush()  # deadlocked here on the index range the sweep had locked
            await reserving.commit()
            assert await unholding is not None
            old.status, old.updated_at = "EXPIRED", now
            await sweeping.session.flush()
            await sweeping.commit()

        assert await stock_of(shop) == (5, 1)  # ord_new holds one; ord_old's unit is back
        statuses = await shop.scalar(
            "inventory", "SELECT COUNT(*) FROM inventory_reservations WHERE status = 'EXPIRED' AND order_id = 'ord_old'"
        )
        assert int(statuses) == 1

    async def test_a_reservation_of_the_next_order_and_a_release_of_the_last_one_both_commit(self, shop: Shop) -> None:
        """The same on the reservations' unique index: order ids rise, so the next order's row
        goes right after the last order's rows, which a release or a commit locks first."""
        _, admin = await shop.admin()
        await adjust(shop, admin, 5)
        body = {"orderId": "ord_20261127_0001", "items": [{**VARIANT, "quantity": 1}]}
        caller = service_auth(shop)
        assert (await shop.client.post("/api/v1/inventory/reserve", json=body, headers=caller)).status_code == 200
        now = shop.clock.now()
        db = shop.platform.db("inventory")
        product_id, variant_id = VARIANT["productId"], VARIANT["variantId"]

        async with db.uow() as reserving, db.uow() as releasing:
            assert await repository.hold(reserving.session, product_id, variant_id, 1, now) is not None
            [last] = await repository.reservations(releasing.session, "ord_20261127_0001", for_update=True)
            unholding = asyncio.create_task(repository.unhold(releasing.session, product_id, variant_id, 1, now))
            await asyncio.sleep(0.3)
            assert not unholding.done()
            reserving.session.add(
                Reservation(
                    order_id="ord_20261127_0002",
                    product_id=product_id,
                    variant_id=variant_id,
                    quantity=1,
                    status="RESERVED",
                    expires_at=now.replace(year=now.year + 1),
                    created_at=now,
                    updated_at=now,
                )
            )
            await reserving.session.flush()
            await reserving.commit()
            assert await unholding is not None
            last.status, last.updated_at = "RELEASED", now
            await releasing.session.flush()
            await releasing.commit()

        assert await stock_of(shop) == (5, 1)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
class TestJobRunner:
    async def test_runs_each_job_again_after_its_interval_and_survives_a_failure(self, shop: Shop) -> None:
        runs: list[str] = []

        async def flaky() -> int:
            runs.append("flaky")
            if len(runs) == 1:
                raise RuntimeError("the database went away")
            return 1

        runner = JobRunner([Job(name="flaky", interval_seconds=0.01, run=flaky)])
        runner.start()
        try:
            for _ in range(200):
                if len(runs) >= 3:
                    break
                await asyncio.sleep(0.01)
        finally:
            await runner.stop()
        assert len(runs) >= 3
