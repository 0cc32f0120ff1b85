"""Every query of the notifications module, locking included."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Select, Table, Update, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tienda.notifications.domain import Status
from tienda.notifications.models import OUTBOX, Notification
from tienda.platform.db import Database, lock_matching


async def by_dedup_keys(session: AsyncSession, keys: Sequence[str]) -> dict[str, Notification]:
    if not keys:
        return {}
    rows = await session.scalars(select(Notification).where(Notification.dedup_key.in_(keys)))
    return {row.dedup_key: row for row in rows}


async def by_public_id(session: AsyncSession, notification_id: str) -> Notification | None:
    return await session.scalar(select(Notification).where(Notification.notification_id == notification_id))


async def by_ids(session: AsyncSession, ids: Sequence[int]) -> list[Notification]:
    return list(await session.scalars(select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id)))


async def page(
    session: AsyncSession,
    *,
    user_id: str | None,
    kind: str | None,
    status: str | None,
    offset: int,
    limit: int,
) -> tuple[list[Notification], int]:
    query = select(Notification)
    if user_id is not None:
        query = query.where(Notification.user_id == user_id)
    if kind is not None:
        query = query.where(Notification.type == kind)
    if status is not None:
        query = query.where(Notification.status == status)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(
        query.order_by(Notification.created_at.desc(), Notification.id.desc()).offset(offset).limit(limit)
    )
    return list(rows), total


async def claim(
    session: AsyncSession,
    *,
    now: datetime,
    lease_until: datetime,
    max_attempts: int,
    limit: int,
    ids: Sequence[int] | None = None,
) -> list[Notification]:
    """PENDING notifications due now, taken for one attempt: the attempt is counted and they are
    not due again until `lease_until`, so no other sender takes them meanwhile (and one whose
    sender died is taken again then). Rows another sender has locked are skipped, not waited for;
    they are locked by primary key (`lock_matching`: on MariaDB a locking read of the
    `(status, next_attempt_at)` index held every new notification until the claim committed)."""
    due = (
        Notification.status == Status.PENDING.value,
        Notification.next_attempt_at <= now,
        Notification.attempts < max_attempts,
    )
    order = (Notification.next_attempt_at, Notification.id)
    rows = await lock_matching(session, Notification, due, order_by=order, limit=limit, ids=ids)
    for row in rows:
        row.attempts += 1
        row.next_attempt_at = lease_until
        row.updated_at = now
    await session.flush()
    return rows


async def settle(db: Database, row_id: int, *, attempt: int, values: dict[str, Any]) -> bool:
    """Records the outcome of attempt number `attempt`, unless another sender has taken the
    notification since (its lease ran out first): then that sender's outcome counts. One
    statement that commits as it runs (`Database.run`)."""
    params = {"id_": row_id, "status_": Status.PENDING.value, "attempt_": attempt} | values
    return bool(await db.run(_settle(tuple(sorted(values))), params))


@cache
def _settle(columns: tuple[str, ...]) -> Update:
    """The guarded update of `settle` that sets these columns (a sent or a failed attempt), built once."""
    table = cast(Table, Notification.__table__)
    return (
        update(table)
        .where(
            table.c.id == bindparam("id_"),
            table.c.status == bindparam("status_"),
            table.c.attempts == bindparam("attempt_"),
        )
        .values({table.c[name]: bindparam(name) for name in columns})
    )


async def add_at_once(db: Database, rows: Sequence[dict[str, Any]], processed: dict[str, Any]) -> dict[str, int]:
    """Insert notifications (their column values, as `Notification` takes them) and the
    processed row of the event that made them (`processed`: the parameters of
    `OutboxTables.add_processed_for_each`) in one statement that commits as it runs
    (`Database.multi_table_statements`). Their ids by `dedup_key`. A notification or an event
    recorded before fails the statement (IntegrityError), with nothing written."""
    columns = tuple(rows[0])
    params = {f"r{i}_{name}": row[name] for i, row in enumerate(rows) for name in columns} | processed
    return {key: row_id for row_id, key in await db.rows(_add(columns, len(rows)), params)}


@cache
def _add(columns: tuple[str, ...], count: int) -> Select[Any]:
    """The insert of `add_at_once` for `count` rows of these columns, built once."""
    table = cast(Table, Notification.__table__)
    values = [
        {table.c[name]: bindparam(f"r{i}_{name}", type_=table.c[name].type) for name in columns} for i in range(count)
    ]
    added = insert(table).values(values).returning(table.c.id, table.c.dedup_key).cte("n")
    recorded = OUTBOX.add_processed_for_each(select(added.c.id).limit(1).subquery()).cte("p")
    return select(added.c.id, added.c.dedup_key).add_cte(recorded)


async def abandoned(session: AsyncSession, *, now: datetime, max_attempts: int, limit: int) -> list[Notification]:
    """PENDING notifications whose last allowed attempt was claimed and never settled (the
    sender died) and whose lease has run out: nobody will try them again. Locked as `claim`'s."""
    given_up = (
        Notification.status == Status.PENDING.value,
        Notification.attempts >= max_attempts,
        Notification.next_attempt_at <= now,
    )
    return await lock_matching(session, Notification, given_up, order_by=(Notification.id,), limit=limit)
