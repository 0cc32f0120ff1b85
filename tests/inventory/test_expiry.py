"""Reservations that are not committed in time give their units back, by the worker's job."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import Shop
from tests.inventory.support import rows
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


Locking = Callable[[AsyncSession, datetime], Awaitable[list[Reservation]]]


async def beside_a_reservation(shop: Shop, locking: Locking, *, new_order: str, closed: str) -> None:
    """A reservation by `new_order` of the hot item takes its stock row and has yet to insert
    its own row; meanwhile a second transaction takes, with `locking`, a reservation of the
    same item and waits for that stock row, to give its unit back. Then the reservation
    inserts its row: where the second transaction's lock covered the gap the row goes into,
    each waits for the other (on MariaDB, before the rows were locked by primary key: error
    1213, a deadlock). Both must commit, the locked row `closed`."""
    now = shop.clock.now()
    db = shop.platform.db("inventory")
    product_id, variant_id = VARIANT["productId"], VARIANT["variantId"]
    async with db.uow() as reserving, db.uow() as giving_back:
        assert await repository.hold(reserving.session, product_id, variant_id, 1, now) is not None
        [taken] = await locking(giving_back.session, now)
        unholding = asyncio.create_task(repository.unhold(giving_back.session, product_id, variant_id, 1, now))
        await asyncio.sleep(0.3)
        assert not unholding.done()  # it waits for the reservation's lock of the stock row
        reserving.session.add(
            Reservation(
                order_id=new_order,
                product_id=product_id,
                variant_id=variant_id,
                quantity=1,
                status="RESERVED",
                expires_at=now + timedelta(minutes=15),
                created_at=now,
                updated_at=now,
            )
        )
        await reserving.session.flush()
        await reserving.commit()
        assert await unholding is not None
        taken.status, taken.updated_at = closed, now
        await giving_back.session.flush()
        await giving_back.commit()


async def reserved(shop: Shop, order_id: str, **extra: Any) -> None:
    body = {"orderId": order_id, "items": [{**VARIANT, "quantity": 1}], **extra}
    response = await shop.client.post("/api/v1/inventory/reserve", json=body, headers=service_auth(shop))
    assert response.status_code == 200, response.text


async def statuses(shop: Shop) -> dict[str, str]:
    found = await rows(shop, "SELECT order_id, status FROM inventory_reservations")
    return {str(order_id): str(status) for order_id, status in found}


@pytest.mark.parametrize("backend", ["postgres", "mysql"], indirect=True)
class TestBesideAReservationOfTheSameItem:
    """The interleavings that deadlocked on MariaDB, step by step (`beside_a_reservation`)."""

    async def test_the_sweep_of_an_expired_reservation_and_a_new_reservation_both_commit(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        await adjust(shop, admin, 5)
        await reserved(shop, "ord_old", ttlSeconds=60)
        shop.clock.advance(minutes=2)

        await beside_a_reservation(
            shop, lambda session, now: repository.expired(session, now, 500), new_order="ord_new", closed="EXPIRED"
        )

        assert await stock_of(shop) == (5, 1)  # ord_new holds one; ord_old's unit is back
        assert await statuses(shop) == {"ord_old": "EXPIRED", "ord_new": "RESERVED"}

    async def test_the_release_of_the_last_order_and_the_reservation_of_the_next_both_commit(self, shop: Shop) -> None:
        """Order ids rise, so the next order's row goes right after the last order's rows in the
        reservations' unique index, which a release, a sale and a give-back lock first."""
        _, admin = await shop.admin()
        await adjust(shop, admin, 5)
        await reserved(shop, "ord_20261127_0001")

        await beside_a_reservation(
            shop,
            lambda session, _: repository.reservations(session, "ord_20261127_0001", for_update=True),
            new_order="ord_20261127_0002",
            closed="RELEASED",
        )

        assert await stock_of(shop) == (5, 1)
        assert await statuses(shop) == {"ord_20261127_0001": "RELEASED", "ord_20261127_0002": "RESERVED"}


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
