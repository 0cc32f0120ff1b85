"""The database layer: reads outside a transaction and the guard that keeps them reads, plain-row
reads, and which failures a unit of work may run again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import Shop
from tienda.orders.models import OrderSequence
from tienda.platform.db import gave_way, raw_lane
from tienda.users import repository
from tienda.users.models import User


class TestReader:
    async def test_reads_what_was_committed(self, shop: Shop) -> None:
        user_id = await shop.register("reader@example.com")

        async with shop.platform.db("users").reader() as uow:
            user = await repository.user_by_public_id(uow.session, user_id)

        assert user is not None
        assert user.email == "reader@example.com"

    async def test_cannot_commit_or_publish(self, shop: Shop) -> None:
        async with shop.platform.db("users").reader() as uow:
            with pytest.raises(RuntimeError, match="cannot publish"):
                await uow.publish("user.registered", {"userId": "u_x"})
            with pytest.raises(RuntimeError, match="cannot commit"):
                await uow.commit()

        assert await shop.scalar("users", "SELECT count(*) FROM users_outbox_events") == 0


_EMAIL_OF = select(User.user_id, User.email, User.full_name).where(User.email == bindparam("email"))


class TestRows:
    async def test_reads_what_was_committed_as_plain_tuples(self, shop: Shop) -> None:
        user_id = await shop.register("rows@example.com", fullName="Rosa Rows")
        await shop.register("other-rows@example.com")
        db = shop.platform.db("users")

        rows = await db.rows(_EMAIL_OF, {"email": "rows@example.com"})
        again = await db.rows(_EMAIL_OF, {"email": "rows@example.com"})  # compiled once, run twice
        none = await db.rows(_EMAIL_OF, {"email": "nobody@example.com"})

        assert rows == again == [(user_id, "rows@example.com", "Rosa Rows")]
        assert none == []

    @pytest.mark.parametrize("backend", ["postgres"], indirect=True)
    @pytest.mark.parametrize(
        ("statement", "named"),
        [
            (select(User.user_id, User.created_at).where(User.email == bindparam("email")), "created_at"),
            (select(User.user_id).where(User.email.in_(bindparam("email", expanding=True))), "expanding IN"),
        ],
        ids=["a column SQLAlchemy converts", "an expanding IN"],
    )
    async def test_refuses_what_needs_sqlalchemys_execution_on_postgres(
        self, shop: Shop, statement: Any, named: str
    ) -> None:
        """There the select goes to asyncpg as it is: a zone-aware time or an IN list rendered
        at execution would come back wrong or not run, so it is refused with a reason."""
        with pytest.raises(TypeError, match=named):
            await shop.platform.db("users").rows(statement, {"email": ["rows@example.com"]})


_RENAME = update(User).where(User.email == bindparam("of")).values(full_name=bindparam("name"))
_OPEN_DAY = insert(OrderSequence).values(day=bindparam("day"), last=7)  # holds one of its values


class TestRun:
    async def test_a_write_commits_as_it_runs_and_says_how_many_rows_it_changed(self, shop: Shop) -> None:
        user_id = await shop.register("run@example.com")
        db = shop.platform.db("users")

        changed = await db.run(_RENAME, {"of": "run@example.com", "name": "Rita Run"})
        none = await db.run(_RENAME, {"of": "nobody@example.com", "name": "No One"})

        assert (changed, none) == (1, 0)
        assert await shop.scalar("users", "SELECT full_name FROM users WHERE user_id = :u", u=user_id) == "Rita Run"

    async def test_a_broken_rule_is_sqlalchemys_integrity_error_and_stores_nothing(self, shop: Shop) -> None:
        """As through a session, so callers catch one error whatever path ran the statement."""
        db = shop.platform.db("orders")
        assert await db.run(_OPEN_DAY, {"day": "20260101"}) == 1

        with pytest.raises(IntegrityError):
            await db.run(_OPEN_DAY, {"day": "20260101"})

        assert await shop.scalar("orders", "SELECT count(*) FROM order_sequences") == 1
        assert await shop.scalar("orders", "SELECT last FROM order_sequences WHERE day = '20260101'") == 7

    @pytest.mark.parametrize("backend", ["postgres"], indirect=True)
    async def test_a_connection_the_server_closed_fails_one_statement_not_the_next(self, shop: Shop) -> None:
        """The raw path checks out no Core connection, so it drops a dead one from the pool itself."""
        user_id = await shop.register("dropped@example.com")
        db = shop.platform.db("users")
        assert await db.run(_RENAME, {"of": "dropped@example.com", "name": "Before"}) == 1
        pool: Any = db.engine.pool
        pooled = pool.checkedin() + pool.checkedout()  # idle in the pool, or held by the raw lane
        outside = create_async_engine(db.url, poolclass=NullPool)  # not one of the pool's
        try:
            async with outside.connect() as conn:
                await conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
        finally:
            await outside.dispose()
        failures = 0
        for _ in range(pooled + 1):  # each dead connection fails one statement, then it is gone
            try:
                changed = await db.run(_RENAME, {"of": "dropped@example.com", "name": "After"})
                break
            except DBAPIError:
                failures += 1
        else:
            pytest.fail("no statement went through after the server closed the connections")

        assert changed == 1
        assert 1 <= failures <= pooled
        assert await shop.scalar("users", "SELECT full_name FROM users WHERE user_id = :u", u=user_id) == "After"

    @pytest.mark.parametrize("backend", ["postgres", "sqlite"], indirect=True)
    async def test_rows_gives_what_a_write_returns(self, shop: Shop) -> None:
        """(MariaDB has no UPDATE ... RETURNING.)"""
        user_id = await shop.register("returning@example.com")
        returning = _RENAME.returning(User.user_id, User.full_name)

        rows = await shop.platform.db("users").rows(returning, {"of": "returning@example.com", "name": "Ret Urn"})

        assert rows == [(user_id, "Ret Urn")]
        assert await shop.scalar("users", "SELECT full_name FROM users WHERE user_id = :u", u=user_id) == "Ret Urn"


_BACKEND_PID = select(func.pg_backend_pid())


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
class TestRawLane:
    """`Database.rows` and `run` on PostgreSQL keep their connections between statements
    (`RawLane`) instead of checking one out of the pool and back in each time."""

    async def test_statements_one_after_another_run_on_one_kept_connection(self, shop: Shop) -> None:
        db = shop.platform.db("users")
        await db.rows(_BACKEND_PID, {})
        pool: Any = db.engine.pool
        out_before = pool.checkedout()

        pids = {(await db.rows(_BACKEND_PID, {}))[0][0] for _ in range(20)}

        assert len(pids) == 1
        assert pool.checkedout() == out_before  # nothing checked out and in again, nothing more held

    async def test_statements_at_once_take_up_to_half_the_pool_and_the_rest_from_the_pool(self, shop: Shop) -> None:
        db = shop.platform.db("users")
        lane = raw_lane(db.engine)
        sleeping = select(func.pg_sleep(0.2), func.pg_backend_pid())

        rows = await asyncio.gather(*(db.rows(sleeping, {}) for _ in range(lane.limit + 3)))

        assert len({row[0][1] for row in rows}) == lane.limit + 3  # each on a connection of its own
        assert lane.held == lane.limit
        pool: Any = db.engine.pool
        assert pool.checkedout() == lane.held  # the three past the limit went back to the pool

    async def test_a_connection_held_past_its_time_goes_back_to_the_pool(self, shop: Shop) -> None:
        db = shop.platform.db("users")
        lane = raw_lane(db.engine)
        await db.rows(_BACKEND_PID, {})
        held = lane.held
        kept, lane.hold_seconds = lane.hold_seconds, 0.0
        try:
            await db.rows(_BACKEND_PID, {})
            assert lane.held == held - 1  # returned after its statement: the pool may recycle it
        finally:
            lane.hold_seconds = kept

    async def test_dispose_gives_every_kept_connection_back(self, shop: Shop) -> None:
        db = shop.platform.db("users")
        await asyncio.gather(*(db.rows(select(func.pg_sleep(0.05)), {}) for _ in range(4)))
        lane = raw_lane(db.engine)
        assert lane.held >= 1

        await lane.close()

        assert lane.held == 0
        pool: Any = db.engine.pool
        assert pool.checkedout() == 0
        assert raw_lane(db.engine) is not lane  # a new lane, should the engine be used again
        assert (await db.rows(_BACKEND_PID, {}))[0][0] > 0


class TestGaveWay:
    """`gave_way`: which failures a unit of work may run again from the start."""

    async def test_a_broken_rule_is_not_given_way(self, shop: Shop) -> None:
        insert = text("INSERT INTO order_sequences (day, last) VALUES ('20260101', 1)")
        async with shop.platform.db("orders").engine.begin() as conn:
            await conn.execute(insert)

        with pytest.raises(IntegrityError) as raised:
            async with shop.platform.db("orders").engine.begin() as conn:
                await conn.execute(insert)

        assert not gave_way(raised.value)
        assert not gave_way(RuntimeError("not the database's"))

    @pytest.mark.parametrize("backend", ["postgres", "mysql"], indirect=True)
    async def test_the_loser_of_a_deadlock_gave_way(self, shop: Shop) -> None:
        """Two transactions lock two rows in opposite orders: the database rolls one back."""
        engine = shop.platform.db("orders").engine
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO order_sequences (day, last) VALUES ('20260101', 1), ('20260102', 1)"))
        a_locked, b_locked = asyncio.Event(), asyncio.Event()

        async def lock(mine: str, theirs: str, locked: asyncio.Event, other: asyncio.Event) -> None:
            async with engine.begin() as conn:
                await conn.execute(text(f"UPDATE order_sequences SET last = last + 1 WHERE day = '{mine}'"))
                locked.set()
                await other.wait()
                await conn.execute(text(f"UPDATE order_sequences SET last = last + 1 WHERE day = '{theirs}'"))

        outcomes = await asyncio.gather(
            lock("20260101", "20260102", a_locked, b_locked),
            lock("20260102", "20260101", b_locked, a_locked),
            return_exceptions=True,
        )

        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(failures) == 1, outcomes
        assert gave_way(failures[0]), repr(failures[0])
