"""The transactional outbox: events commit with their change, are relayed at least once,
and are consumed once per consumer."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from tests.conftest import Shop
from tienda.platform.db import Database, UnitOfWork, raw_lane
from tienda.platform.events import Consumer, Event, InProcessBus, OutboxRelay, Subscription, prune_published


def _consumer(name: str, seen: list[str], *, fail_times: int = 0) -> Consumer:
    failures = {"left": fail_times}

    async def handle(event: Event, uow: UnitOfWork) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("consumer is down")
        seen.append(event.id)

    return Consumer(name=name, module="users", event_types=("user.registered",), handler=handle)


async def _outbox_rows(shop: Shop) -> list[dict[str, object]]:
    table = shop.platform.db("users").outbox.outbox
    async with shop.platform.db("users").engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(table).order_by(table.c.id))]


class TestOutboxWrite:
    async def test_a_change_and_its_event_commit_together(self, shop: Shop) -> None:
        user_id = await shop.register("ravi@example.com")

        rows = await _outbox_rows(shop)
        assert [r["type"] for r in rows] == ["user.registered"]
        assert rows[0]["payload"] == {"userId": user_id, "email": "ravi@example.com", "fullName": None, "role": "USER"}
        assert rows[0]["published_at"] is None

    async def test_a_rolled_back_change_leaves_no_event(self, shop: Shop) -> None:
        async with shop.platform.db("users").uow() as uow:
            await uow.publish("user.registered", {"userId": "u_ghost"})
            # leaving without commit rolls back

        assert await _outbox_rows(shop) == []


class TestInProcessRelay:
    async def test_relays_each_event_once_to_each_consumer(self, shop: Shop) -> None:
        seen_a: list[str] = []
        seen_b: list[str] = []
        db = shop.platform.db("users")
        bus = InProcessBus(
            [Subscription(_consumer("test.a", seen_a), db), Subscription(_consumer("test.b", seen_b), db)]
        )
        relay = OutboxRelay([db], bus)
        await shop.register("one@example.com")
        await shop.register("two@example.com")

        assert await relay.drain() == 2
        assert await relay.drain() == 0

        rows = await _outbox_rows(shop)
        assert seen_a == seen_b == [r["event_id"] for r in rows]
        assert all(r["published_at"] is not None for r in rows)

    async def test_a_redelivered_event_is_ignored_by_the_consumer(self, shop: Shop) -> None:
        seen: list[str] = []
        sub = Subscription(_consumer("test.dedupe", seen), shop.platform.db("users"))
        event = Event(
            id=str(uuid.uuid4()), type="user.registered", source="users", occurred_at=datetime.now(UTC), payload={}
        )

        first = await sub.deliver(event)
        second = await sub.deliver(event)

        assert (first, second) == (True, False)
        assert seen == [event.id]
        count = await shop.scalar(
            "users",
            "SELECT count(*) FROM users_processed_events WHERE consumer = 'test.dedupe' AND event_id = :e",
            e=event.id,
        )
        assert count == 1

    async def test_concurrent_deliveries_of_one_event_apply_once(self, shop: Shop) -> None:
        seen: list[str] = []
        sub = Subscription(_consumer("test.race", seen), shop.platform.db("users"))
        event = Event(
            id=str(uuid.uuid4()), type="user.registered", source="users", occurred_at=datetime.now(UTC), payload={}
        )

        results = await asyncio.gather(*(sub.deliver(event) for _ in range(5)), return_exceptions=True)

        assert seen == [event.id]
        assert results.count(True) == 1

    async def test_modules_on_one_database_are_probed_in_one_statement(self, shop: Shop) -> None:
        """One process, one database: an idle round asks once whether any outbox has events,
        and a round relays exactly the outboxes that have some."""
        databases = list(shop.platform.databases.values())
        assert len({db.url for db in databases}) == 1
        assert len(databases) > 2
        seen: list[str] = []
        users = shop.platform.db("users")
        orders = shop.platform.db("orders")
        relay = OutboxRelay(databases, InProcessBus([Subscription(_consumer("test.probe", seen), users)]))
        async with _statements_run(databases) as taken:
            assert await relay.run_once() == 0
            idle = await taken()
            await shop.register("probe@example.com")  # a users event
            async with orders.uow() as uow:
                await uow.publish("test.orders_only", {"n": 1})
                await uow.commit()
            await taken()
            assert await relay.run_once() == 2
            busy = await taken()

        [probe] = idle
        assert probe.startswith("SELECT EXISTS")
        touched = {
            name
            for name in ("users_outbox_events", "orders_outbox_events", "carts_outbox_events")
            if any(s.startswith(f"UPDATE {name} SET lease_until") for s in busy)
        }
        assert touched == {"users_outbox_events", "orders_outbox_events"}
        assert len(seen) == 1
        for db in (users, orders):
            table = db.outbox.outbox
            async with db.engine.connect() as conn:
                waiting = await conn.scalar(select(func.count()).where(table.c.published_at.is_(None)))
            assert waiting == 0

    async def test_a_failing_consumer_keeps_the_event_for_a_retry(self, shop: Shop) -> None:
        seen: list[str] = []
        db = shop.platform.db("users")
        relay = OutboxRelay([db], InProcessBus([Subscription(_consumer("test.flaky", seen, fail_times=1), db)]))
        relay.retry_backoff = relay.retry_backoff * 0
        await shop.register("flaky@example.com")

        assert await relay.run_once() == 0
        [row] = await _outbox_rows(shop)
        assert row["published_at"] is None
        assert row["attempts"] == 1
        assert "consumer is down" in str(row["last_error"])
        assert seen == []

        assert await relay.run_once() == 1
        [row] = await _outbox_rows(shop)
        assert row["published_at"] is not None
        assert seen == [row["event_id"]]


def _event(payload: dict[str, object] | None = None, *, at: datetime | None = None) -> Event:
    return Event(
        id=str(uuid.uuid4()),
        type="user.registered",
        source="users",
        occurred_at=at or datetime.now(UTC),
        payload=payload or {},
    )


def _committed_consumer(
    name: str,
    committed: list[str],
    *,
    fails_on: set[str] | None = None,
    supersedes: bool = False,
    wants: Callable[[Event], bool] | None = None,
    at_once: Callable[[Event], Awaitable[bool]] | None = None,
) -> Consumer:
    """Records an event once the unit of work that handled it committed (a handler's own list
    would also count the work of a batch that rolled back)."""

    async def handle(event: Event, uow: UnitOfWork) -> None:
        if event.id in (fails_on or set()):
            raise RuntimeError(f"cannot handle {event.id}")
        uow.after_commit(lambda: _append(committed, event.id))

    return Consumer(
        name=name,
        module="users",
        event_types=("user.registered",),
        handler=handle,
        supersedes=(lambda event: event.payload["item"]) if supersedes else None,
        wants=wants,
        at_once=at_once,
    )


async def _append(committed: list[str], event_id: str) -> None:
    committed.append(event_id)


async def _processed(shop: Shop, consumer: str) -> int:
    return int(
        await shop.scalar("users", "SELECT count(*) FROM users_processed_events WHERE consumer = :c", c=consumer)
    )


class TestBatchDelivery:
    """Events a broker delivered together are handled in one unit of work
    (`Subscription.deliver_many`), with the same once-per-event guarantee as one by one."""

    async def test_each_new_event_is_handled_once_and_those_handled_before_are_skipped(self, shop: Shop) -> None:
        committed: list[str] = []
        sub = Subscription(_committed_consumer("test.batch", committed), shop.platform.db("users"))
        one, two, three = _event(), _event(), _event()
        assert await sub.deliver(one)

        new = await sub.deliver_many([one, two, three, two])

        assert new == 2
        assert committed == [one.id, two.id, three.id]
        assert await _processed(shop, "test.batch") == 3
        assert await sub.deliver_many([two, three]) == 0
        assert committed == [one.id, two.id, three.id]

    async def test_of_events_about_one_thing_only_the_latest_is_handled(self, shop: Shop) -> None:
        committed: list[str] = []
        sub = Subscription(_committed_consumer("test.latest", committed, supersedes=True), shop.platform.db("users"))
        now = datetime.now(UTC)
        a1 = _event({"item": "a"}, at=now)
        b1 = _event({"item": "b"}, at=now)
        a3 = _event({"item": "a"}, at=now + timedelta(seconds=2))
        a2 = _event({"item": "a"}, at=now + timedelta(seconds=1))  # arrives last, but is older

        assert await sub.deliver_many([a1, b1, a3, a2]) == 4

        assert committed == [b1.id, a3.id]
        assert await _processed(shop, "test.latest") == 4
        assert not await sub.deliver(a2)  # recorded: delivered again, nothing happens

    async def test_events_the_consumer_does_not_want_are_left_without_a_trace(self, shop: Shop) -> None:
        committed: list[str] = []
        sub = Subscription(
            _committed_consumer("test.wants", committed, wants=lambda event: event.payload.get("news") is True),
            shop.platform.db("users"),
        )
        news, noise, more_noise = _event({"news": True}), _event({"news": False}), _event({"news": False})

        assert await sub.deliver_many([noise, news, more_noise]) == 1
        assert not await sub.deliver(noise)
        assert await sub.deliver_many([noise, more_noise]) == 0

        assert committed == [news.id]
        assert await _processed(shop, "test.wants") == 1
        assert not await sub.deliver(news)  # the one it wanted is recorded as any other

    async def test_events_handled_at_once_skip_the_unit_of_work_and_the_others_take_it(self, shop: Shop) -> None:
        committed: list[str] = []
        at_once: list[str] = []
        tried: list[str] = []

        async def quick(event: Event) -> bool:  # the common case, in a statement of its own
            tried.append(event.id)
            if event.payload.get("common") is not True:
                return False
            at_once.append(event.id)
            return True

        sub = Subscription(_committed_consumer("test.at_once", committed, at_once=quick), shop.platform.db("users"))
        common, odd, other_common, odd_too = (_event({"common": c}) for c in (True, False, True, False))

        assert await sub.deliver(common)
        assert await sub.deliver_many([odd, other_common, odd_too]) == 3

        assert at_once == [common.id, other_common.id]
        assert committed == [odd.id, odd_too.id]
        # what the unit of work handled is recorded there; the rest is the consumer's own statement's
        assert await _processed(shop, "test.at_once") == 2
        assert not await sub.deliver(odd)
        assert await sub.deliver_many([odd, odd_too]) == 0
        assert committed == [odd.id, odd_too.id]
        # each event is tried at once one time per delivery, a lone one left over included
        tried.clear()
        lone_common, lone_odd = _event({"common": True}), _event({"common": False})
        assert await sub.deliver_many([lone_common, lone_odd]) == 2
        assert tried == [lone_common.id, lone_odd.id]
        assert committed[-1] == lone_odd.id

    async def test_a_failing_handler_records_nothing_of_its_batch(self, shop: Shop) -> None:
        committed: list[str] = []
        good, bad = _event(), _event()
        sub = Subscription(_committed_consumer("test.failing", committed, fails_on={bad.id}), shop.platform.db("users"))

        with pytest.raises(RuntimeError, match="cannot handle"):
            await sub.deliver_many([good, bad])

        assert committed == []
        assert await _processed(shop, "test.failing") == 0
        assert await sub.deliver(good)  # one by one, the good one goes through
        assert committed == [good.id]


@contextlib.asynccontextmanager
async def _statements_run(databases: list[Database]) -> AsyncIterator[Callable[[], Awaitable[list[str]]]]:
    """Collects the SQL that these databases run meanwhile, BEGIN/COMMIT/ROLLBACK aside; gives
    a function that takes what was collected so far. From SQLAlchemy's cursor events, and on
    PostgreSQL from asyncpg's own query log too, which sees the statements `Database.rows`
    and `run` send past SQLAlchemy (and not the prepared ones SQLAlchemy sends)."""
    into: list[str] = []

    async def taken() -> list[str]:
        await asyncio.sleep(0.01)  # asyncpg calls its query loggers soon, not at once
        found = list(into)
        into.clear()
        return found

    def keep(statement: str) -> None:
        if statement.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            into.append(statement)

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        keep(statement)

    def log(query: Any) -> None:
        keep(query.query)

    logged: list[Any] = []

    def watch(dbapi_connection: Any, *args: object) -> None:
        driver = dbapi_connection.driver_connection
        if driver not in logged:
            driver.add_query_logger(log)
            logged.append(driver)

    # Readers share the writer's engine (and its events), but for SQLite's engine of readers.
    engines = {db.engine.sync_engine for db in databases} | {
        db.read_engine.sync_engine for db in databases if db.dialect == "sqlite"
    }
    postgres = databases[0].dialect == "postgresql"
    for each in engines:
        event.listen(each, "before_cursor_execute", count)
        if postgres:
            event.listen(each.pool, "checkout", watch)
    if postgres:  # the raw lanes' connections back to the pool: the statements check out anew
        for db in databases:
            await raw_lane(db.engine).close()
    try:
        yield taken
    finally:
        for each in engines:
            event.remove(each, "before_cursor_execute", count)
            if postgres:
                event.remove(each.pool, "checkout", watch)
        for driver in logged:
            driver.remove_query_logger(log)


class TestPruning:
    """Published events leave the outbox once past `TIENDA_OUTBOX_RETENTION_DAYS` (7): the
    worker's `events.prune_published` job; an event still waiting is kept whatever its age."""

    async def _aged(self, shop: Shop, ages: dict[str, timedelta | None]) -> None:
        """Each registered user's event published that long ago (None: not published), and
        every event made long before."""
        table = shop.platform.db("users").outbox.outbox
        now = shop.clock.now()
        async with shop.platform.db("users").engine.begin() as conn:
            for row in (await conn.execute(select(table.c.id, table.c.payload))).all():
                age = ages[row.payload["email"]]
                published = None if age is None else now - age
                await conn.execute(
                    table.update()
                    .where(table.c.id == row.id)
                    .values(published_at=published, occurred_at=now - timedelta(days=30))
                )

    async def _emails(self, shop: Shop) -> list[str]:
        return [str(row["payload"]["email"]) for row in await _outbox_rows(shop)]  # type: ignore[index]

    async def test_the_job_deletes_events_published_before_the_retention_and_keeps_the_rest(self, shop: Shop) -> None:
        for name in ("old", "recent", "new", "waiting"):
            await shop.register(f"{name}@example.com")
        await self._aged(
            shop,
            {
                "old@example.com": timedelta(days=7, minutes=1),
                "recent@example.com": timedelta(days=6, hours=23),
                "new@example.com": timedelta(0),
                "waiting@example.com": None,
            },
        )

        assert (await shop.platform.jobs.run_all_once())["events.prune_published"] == 1

        assert await self._emails(shop) == ["recent@example.com", "new@example.com", "waiting@example.com"]
        assert await shop.relay() == 1  # the waiting event is still delivered
        assert (await shop.platform.jobs.run_all_once())["events.prune_published"] == 0

    async def test_many_events_go_in_batches_each_committed(self, shop: Shop) -> None:
        emails = [f"user{n}@example.com" for n in range(5)]
        for email_address in emails:
            await shop.register(email_address)
        await self._aged(shop, dict.fromkeys(emails, timedelta(days=8)))

        before = shop.clock.now() - timedelta(days=7)
        assert await prune_published(shop.platform.db("users"), before=before, batch=2) == 5

        assert await _outbox_rows(shop) == []


@pytest.mark.parametrize("backend", ["postgres", "mysql"], indirect=True)
class TestClaimBesideAPublisher:
    async def test_an_event_is_published_while_a_relay_holds_its_claim(self, shop: Shop) -> None:
        """A relay's claim on MariaDB, with the statements `_claim` runs, left open: a module's
        transaction publishing an event meanwhile commits at once. With one locking read of
        the `(published_at, id)` index (`unpublished`) InnoDB locked the gap where each new
        event goes, and the publisher waited for the claim's commit."""
        db = shop.platform.db("users")
        tables = db.outbox
        for n in range(3):
            await shop.register(f"sent{n}@example.com")
        await shop.relay()
        await shop.register("waiting@example.com")
        params = {"now": datetime.now(UTC), "limit": 100}

        async with db.uow() as claiming:
            ids = list(await claiming.session.scalars(tables.first_waiting, params))
            claimed = (await claiming.session.execute(tables.lock_waiting, params | {"ids": ids})).all()
            assert [row.payload["email"] for row in claimed] == ["waiting@example.com"]

            async def publish() -> float:
                async with db.uow() as uow:
                    await uow.publish("user.registered", {"userId": "u_new", "email": "new@example.com"})
                    await uow.commit()
                return asyncio.get_running_loop().time()

            publishing = asyncio.create_task(publish())
            await asyncio.wait([publishing], timeout=2)
            claim_open_until = asyncio.get_running_loop().time()
            await claiming.session.rollback()
            assert await publishing <= claim_open_until  # committed while the claim was open
