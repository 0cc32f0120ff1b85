"""The transactional outbox, its relay, and idempotent consumption (DESIGN.md section 1).

A module writes events to its own outbox table in the transaction that made the change
(`UnitOfWork.publish`). A relay reads unpublished rows and hands them to a bus: the
in-process bus calls the consumers directly (dev), the RabbitMQ bus sends them to a topic
exchange (production). Delivery is at least once; each consumer records the event ids it
has handled in its own database (`<module>_processed_events`), in the same transaction as
its effect, so a redelivered event changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Delete,
    Index,
    Insert,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    Update,
    any_,
    bindparam,
    exists,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import FromClause

from tienda.platform.db import BigPK, Database, UnitOfWork, UTCDateTime, locking_by_id
from tienda.platform.observability import get_logger

log = get_logger("tienda.events")


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    source: str
    occurred_at: datetime
    payload: dict[str, Any]

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "id": self.id,
                "type": self.type,
                "source": self.source,
                "occurredAt": self.occurred_at.isoformat(),
                "payload": self.payload,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Event:
        data = json.loads(raw)
        return cls(
            id=data["id"],
            type=data["type"],
            source=data["source"],
            occurred_at=datetime.fromisoformat(data["occurredAt"]),
            payload=data["payload"],
        )


@dataclass(frozen=True)
class OutboxTables:
    """A module's outbox and processed-events tables, and the statements every event goes
    through, each built once with its values bound at execution: building one per call (its
    clauses, then its cache key) cost more than executing it (an outbox insert 1.2 ms against
    0.8 ms of CPU, rollback included, on this project's 2-core bench machine)."""

    outbox: Table
    processed: Table

    @cached_property
    def add_event(self) -> Insert:
        """Insert one event; parameters: an `outbox_row`."""
        return self.outbox.insert()

    def add_event_for_each(self, rows: FromClause) -> Insert:
        """Insert one event (parameters: `event_params` of an `outbox_row`) for each row of
        `rows`: in one statement with a CTE that wrote something, the event goes only if it did."""
        columns = self.outbox.c
        event = select(*(bindparam(f"e_{name}", type_=columns[name].type) for name in OUTBOX_ROW_COLUMNS))
        return self.outbox.insert().from_select(list(OUTBOX_ROW_COLUMNS), event.select_from(rows))

    @cached_property
    def add_processed(self) -> Insert:
        """Insert processed rows; parameters: `consumer`, `event_id`, `processed_at` (a list for several)."""
        return self.processed.insert()

    def add_processed_for_each(self, rows: FromClause) -> Insert:
        """Insert the processed row of one event (parameters `p_consumer`, `p_event_id`,
        `p_processed_at`) for each row of `rows`: in one statement with a CTE that wrote
        something, the event is recorded only if it did (and a duplicate fails the statement)."""
        columns = self.processed.c
        names = ("consumer", "event_id", "processed_at")
        row = select(*(bindparam(f"p_{name}", type_=columns[name].type) for name in names))
        return self.processed.insert().from_select(list(names), row.select_from(rows))

    @cached_property
    def seen(self) -> Select[str]:
        """Which of the event ids `ids` the consumer `consumer` has handled."""
        table = self.processed
        return select(table.c.event_id).where(
            table.c.consumer == bindparam("consumer"), table.c.event_id.in_(bindparam("ids", expanding=True))
        )

    @cached_property
    def waiting(self) -> Select[Any]:
        """The ids of events waiting at `now`: not published, not leased (the relay's probe)."""
        table = self.outbox
        return select(table.c.id).where(
            table.c.published_at.is_(None),
            (table.c.lease_until.is_(None)) | (table.c.lease_until < bindparam("now")),
        )

    @cached_property
    def unpublished(self) -> Select[Any]:
        """Up to `limit` events waiting at `now`, whole, oldest first, locked (skipping rows
        another relay holds)."""
        return (
            self.waiting.with_only_columns(*self.outbox.c)
            .order_by(self.outbox.c.id)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
        )

    @cached_property
    def first_waiting(self) -> Select[Any]:
        """The ids of up to `limit` events waiting at `now`, oldest first, read without a lock."""
        return self.waiting.order_by(self.outbox.c.id).limit(bindparam("limit"))

    @cached_property
    def lock_waiting(self) -> Select[Any]:
        """The events `ids` that still wait at `now`, whole, locked by primary key (skipping
        rows another relay holds): `unpublished` without its locks on the index's gaps."""
        table = self.outbox
        query = self.waiting.with_only_columns(*table.c).where(table.c.id.in_(bindparam("ids", expanding=True)))
        return locking_by_id(query.order_by(table.c.id).with_for_update(skip_locked=True), table)

    @cached_property
    def claim(self) -> Update:
        """PostgreSQL: `unpublished` leased `until` and returned, in one statement."""
        table = self.outbox
        picked = self.unpublished.with_only_columns(table.c.id).scalar_subquery()
        return update(table).where(table.c.id.in_(picked)).values(lease_until=bindparam("until")).returning(*table.c)

    @cached_property
    def lease(self) -> Update:
        """The events `ids` leased `until`."""
        table = self.outbox
        return (
            update(table).where(table.c.id.in_(bindparam("ids", expanding=True))).values(lease_until=bindparam("until"))
        )

    @cached_property
    def mark_published_in_array(self) -> Update:
        """PostgreSQL: `mark_published` with the ids in one array parameter, which the
        statement, compiled once, takes as it is (`Database.run`); an expanding IN is rendered
        anew for each number of ids."""
        table = self.outbox
        ids = bindparam("ids", type_=postgresql.ARRAY(BigInteger()))
        return update(table).where(table.c.id == any_(ids)).values(published_at=bindparam("at"), lease_until=None)

    @cached_property
    def published_before(self) -> Select[Any]:
        """The ids of up to `limit` events published before `before`, oldest first (the
        `(published_at, id)` index finds them; an unpublished event has no `published_at`)."""
        table = self.outbox
        return (
            select(table.c.id)
            .where(table.c.published_at < bindparam("before"))
            .order_by(table.c.published_at, table.c.id)
            .limit(bindparam("limit"))
        )

    @cached_property
    def delete_events(self) -> Delete:
        """Delete the events `ids`."""
        table = self.outbox
        return table.delete().where(table.c.id.in_(bindparam("ids", expanding=True)))

    @cached_property
    def mark_published(self) -> Update:
        """The events `ids` published at `at`."""
        table = self.outbox
        return (
            update(table)
            .where(table.c.id.in_(bindparam("ids", expanding=True)))
            .values(published_at=bindparam("at"), lease_until=None)
        )


async def prune_published(db: Database, *, before: datetime, batch: int = 1000) -> int:
    """Delete the module's events published before `before`, `batch` at a time, each batch in
    a transaction of its own (deleted by id: short, and on InnoDB no lock on a range that new
    events go into); returns how many. An event waiting to be published is never deleted:
    the outbox is its only copy."""
    tables = db.outbox
    deleted = 0
    while True:
        async with db.uow() as uow:
            ids = list(await uow.session.scalars(tables.published_before, {"before": before, "limit": batch}))
            if ids:
                await uow.session.execute(tables.delete_events, {"ids": ids})
                await uow.commit()
        deleted += len(ids)
        if len(ids) < batch:
            return deleted


def outbox_tables(metadata: MetaData, module: str) -> OutboxTables:
    """The outbox and processed-events tables of one module, in that module's metadata."""
    outbox = Table(
        f"{module}_outbox_events",
        metadata,
        Column("id", BigPK, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("type", String(100), nullable=False),
        Column("source", String(50), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("occurred_at", UTCDateTime(), nullable=False),
        Column("published_at", UTCDateTime(), nullable=True),
        Column("lease_until", UTCDateTime(), nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
        Index(f"ix_{module}_outbox_events_unpublished", "published_at", "id"),
    )
    processed = Table(
        f"{module}_processed_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("processed_at", UTCDateTime(), nullable=False),
    )
    return OutboxTables(outbox=outbox, processed=processed)


OUTBOX_ROW_COLUMNS = ("event_id", "type", "source", "payload", "occurred_at", "attempts")
"""The columns an `outbox_row` fills: the others start empty."""


def processed_params(consumer: str, event: Event) -> dict[str, Any]:
    """The parameters of `OutboxTables.add_processed_for_each`: `event` handled by `consumer` now."""
    return {"p_consumer": consumer, "p_event_id": event.id, "p_processed_at": datetime.now(UTC)}


def event_params(event: dict[str, Any]) -> dict[str, Any]:
    """An `outbox_row` as the parameters of a statement that also writes other tables
    (`OutboxTables.add_event_for_each`, or an insert of the outbox's columns from `e_<column>`)."""
    return {f"e_{name}": event[name] for name in OUTBOX_ROW_COLUMNS}


def outbox_row(event_type: str, payload: dict[str, Any], *, source: str, at: datetime | None) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "source": source,
        "payload": payload,
        "occurred_at": at or datetime.now(UTC),
        "attempts": 0,
    }


Handler = Callable[[Event, UnitOfWork], Awaitable[None]]


@dataclass(frozen=True)
class Consumer:
    """A handler of some event types, run in a unit of work of the consuming module."""

    name: str
    module: str
    event_types: tuple[str, ...]
    handler: Handler
    supersedes: Callable[[Event], Hashable] | None = None
    """For events that each carry the whole state of something (a stock row's counts): the
    key of that thing. Of several such events delivered together, only the latest one's
    handler runs; the others are recorded as processed, as their handling would have been
    overwritten by it."""
    wants: Callable[[Event], bool] | None = None
    """For a consumer that some events of its types can tell nothing new (a sale leaves a stock
    row's available as it was): whether this one needs handling. The others are acknowledged
    without a unit of work, a processed row or a round trip to the database."""
    at_once: Callable[[Event], Awaitable[bool]] | None = None
    """For a consumer that can handle the common case of an event in one statement of its own,
    which records the event as processed in the same statement and commits as it runs: tried
    first, before any unit of work. False: it did not apply (a duplicate among them: the
    statement must then write nothing), and the event goes through the unit of work as usual."""


@dataclass
class Subscription:
    consumer: Consumer
    db: Database

    async def deliver(self, event: Event) -> bool:
        """Run the handler once per event id; returns False for a duplicate (and for an event
        the consumer does not want)."""
        if self.consumer.wants is not None and not self.consumer.wants(event):
            return False
        if self.consumer.at_once is not None and await self.consumer.at_once(event):
            return True
        return await self._in_a_unit_of_work(event)

    async def _in_a_unit_of_work(self, event: Event) -> bool:
        async with self.db.uow() as uow:
            # The row first: a duplicate fails here, before any work (and a concurrent delivery
            # of the same event waits on the key until the first one commits or rolls back).
            try:
                await uow.session.execute(
                    self.db.outbox.add_processed,
                    {"consumer": self.consumer.name, "event_id": event.id, "processed_at": datetime.now(UTC)},
                )
            except IntegrityError:
                return False
            await self.consumer.handler(event, uow)
            try:
                await uow.commit()
            except IntegrityError:
                return False  # a concurrent delivery of the same event won
        return True

    async def deliver_many(self, events: Sequence[Event]) -> int:
        """Several events in one unit of work: one read of which were handled already, one
        insert of their processed rows, each new one's handler (the latest only, of events
        one `supersedes` another), one commit; what an event costs beyond its handler is
        shared. Those the consumer handles `at_once` go first, each on its own. Returns how
        many were new. Raises if any handler or the commit fails (a concurrent delivery of one
        of them included): nothing of the unit of work is then recorded, and the caller
        delivers them one by one, so that a bad event is retried alone."""
        wants, at_once = self.consumer.wants, self.consumer.at_once
        if wants is not None:
            events = [event for event in events if wants(event)]
        handled = 0
        if at_once is not None:
            left = []
            for event in events:
                if await at_once(event):
                    handled += 1
                else:
                    left.append(event)
            events = left
        if not events:
            return handled
        if len(events) == 1:  # (`at_once`, if any, was tried on it above)
            return handled + int(await self._in_a_unit_of_work(events[0]))
        tables = self.db.outbox
        name = self.consumer.name
        async with self.db.uow() as uow:
            ids = list(dict.fromkeys(event.id for event in events))
            seen = set(await uow.session.scalars(tables.seen, {"consumer": name, "ids": ids}))
            fresh = list({event.id: event for event in events if event.id not in seen}.values())
            if not fresh:
                return 0
            now = datetime.now(UTC)
            await uow.session.execute(
                tables.add_processed, [{"consumer": name, "event_id": e.id, "processed_at": now} for e in fresh]
            )
            for event in _latest(fresh, self.consumer.supersedes):
                await self.consumer.handler(event, uow)
            await uow.commit()
        return handled + len(fresh)


@cache
def _probe(outboxes: tuple[OutboxTables, ...]) -> Select[*tuple[bool, ...]]:
    """One row: for each outbox, whether an event waits in it (parameter `now`)."""
    return select(*(exists(tables.waiting).label(f"waiting_{i}") for i, tables in enumerate(outboxes)))


def _latest(events: list[Event], key: Callable[[Event], Hashable] | None) -> list[Event]:
    """The events to handle, in order: all of them, or the latest of each key (by time, then
    by arrival)."""
    if key is None:
        return events
    latest: dict[Hashable, tuple[datetime, int]] = {}
    for position, event in enumerate(events):
        mark = (event.occurred_at, position)
        if latest.get(key(event), mark) <= mark:
            latest[key(event)] = mark
    keep = {position for _, position in latest.values()}
    return [event for position, event in enumerate(events) if position in keep]


class EventBus(Protocol):
    async def publish(self, event: Event) -> None: ...

    async def publish_many(self, events: Sequence[Event]) -> list[BaseException | None]:
        """Publish these, in this order; for each, None once the bus has it, or what failed."""
        ...

    async def close(self) -> None: ...


class EventSink(Protocol):
    def wake(self) -> None: ...


class InProcessBus:
    """Delivers each event straight to its subscribed consumers (dev, one process)."""

    def __init__(self, subscriptions: Iterable[Subscription] = ()) -> None:
        self.subscriptions: dict[str, list[Subscription]] = {}
        for sub in subscriptions:
            self.subscribe(sub)

    def subscribe(self, sub: Subscription) -> None:
        for event_type in sub.consumer.event_types:
            self.subscriptions.setdefault(event_type, []).append(sub)

    async def publish(self, event: Event) -> None:
        for sub in self.subscriptions.get(event.type, ()):
            await sub.deliver(event)

    async def publish_many(self, events: Sequence[Event]) -> list[BaseException | None]:
        """One after the other: each event's consumers run before the next one's, as in production
        each queue takes them in order."""
        outcomes: list[BaseException | None] = []
        for event in events:
            try:
                await self.publish(event)
                outcomes.append(None)
            except Exception as exc:  # one bad event must not stop the others
                outcomes.append(exc)
        return outcomes

    async def close(self) -> None:
        return None


@dataclass
class OutboxRelay:
    """Moves committed outbox rows of every module database to the bus.

    Rows are leased in a short transaction, published outside any transaction, then marked
    published; a relay that dies mid-way leaves a lease that expires, so another relay (or
    the same after restart) sends the rows again. Consumers drop the duplicates.
    """

    databases: list[Database]
    bus: EventBus
    poll_interval: float = 0.2
    batch_size: int = 100
    lease: timedelta = timedelta(seconds=30)
    retry_backoff: timedelta = timedelta(seconds=1)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        sent = 0
        for db in await self._waiting():
            sent += await self._relay(db)
        return sent

    async def _waiting(self) -> list[Database]:
        """The databases with events waiting. Modules that share one database (one process
        runs them all) are asked in one statement, not each in a transaction of its own: an
        idle relay polling eight outboxes five times a second cost 7% of a core, and under
        load most rounds find most outboxes empty. An event committed after the probe is
        found by the next round, as one committed after an outbox's own poll always was."""
        groups: dict[str, list[Database]] = {}
        for db in self.databases:
            groups.setdefault(db.url, []).append(db)
        waiting: list[Database] = []
        now = datetime.now(UTC)
        for group in groups.values():
            if len(group) == 1:
                waiting += group
                continue
            (row,) = await group[0].rows(_probe(tuple(db.outbox for db in group)), {"now": now})
            waiting += [db for db, has in zip(group, row, strict=True) if has]
        return waiting

    async def drain(self, *, max_rounds: int = 100) -> int:
        """Relay until nothing is left (tests and shutdown)."""
        total = 0
        for _ in range(max_rounds):
            sent = await self.run_once()
            total += sent
            if sent == 0:
                break
        return total

    async def _relay(self, db: Database) -> int:
        tables = db.outbox
        table = tables.outbox
        rows = await self._claim(db)
        if not rows:
            return 0

        published: list[int] = []
        failed: dict[int, str] = {}
        events = [
            Event(id=row.event_id, type=row.type, source=row.source, occurred_at=row.occurred_at, payload=row.payload)
            for row in rows
        ]
        for row, outcome in zip(rows, await self.bus.publish_many(events), strict=True):
            if outcome is None:
                published.append(row.id)
            else:  # one bad event does not stop the others
                log.warning("event_publish_failed", event_id=row.event_id, type=row.type, error=repr(outcome))
                failed[row.id] = repr(outcome)[:1000]

        done_at = datetime.now(UTC)
        if not failed:  # the common case: one statement, which commits as it runs
            await db.run(
                tables.mark_published if db.dialect != "postgresql" else tables.mark_published_in_array,
                {"ids": published, "at": done_at},
            )
            return len(published)
        async with db.uow() as uow:
            if published:
                await uow.session.execute(tables.mark_published, {"ids": published, "at": done_at})
            for row_id, error in failed.items():
                await uow.session.execute(
                    update(table)
                    .where(table.c.id == row_id)
                    .values(
                        attempts=table.c.attempts + 1,
                        last_error=error,
                        lease_until=done_at + self.retry_backoff,
                    )
                )
            await uow.commit()
        return len(published)

    async def _claim(self, db: Database) -> list[Any]:
        """Up to a batch of waiting events, oldest first, leased to this relay. On PostgreSQL
        one statement in autocommit picks, locks and leases them; elsewhere (no UPDATE ...
        RETURNING on MariaDB) a transaction reads them locked, then leases them. Either way
        the rows stay locked until leased, so two relays never take the same event."""
        tables = db.outbox
        now = datetime.now(UTC)
        params = {"now": now, "limit": self.batch_size, "until": now + self.lease}
        if db.dialect == "postgresql":
            async with db.read_engine.connect() as conn:
                return sorted((await conn.execute(tables.claim, params)).all(), key=lambda row: int(row.id))
        async with db.uow() as uow:
            # By id: `unpublished`'s one locking read of the index would lock the gap where
            # every new event goes, and InnoDB would hold each transaction that publishes one
            # until this claim commits (`platform.db.locking_by_id`).
            ids = list(await uow.session.scalars(tables.first_waiting, params))
            rows = list((await uow.session.execute(tables.lock_waiting, params | {"ids": ids})).all()) if ids else []
            if rows:
                await uow.session.execute(tables.lease, {"ids": [r.id for r in rows], "until": params["until"]})
                await uow.commit()
        return rows

    async def run_forever(self) -> None:
        while True:
            try:
                sent = await self.run_once()
            except Exception as exc:
                log.error("relay_error", error=repr(exc))
                sent = 0
            if sent:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    def start(self) -> None:
        for db in self.databases:
            db.sink = self
        self._task = asyncio.create_task(self.run_forever(), name="outbox-relay")

    async def stop(self) -> None:
        for db in self.databases:
            if db.sink is self:
                db.sink = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
