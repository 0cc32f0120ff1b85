"""Every query of orders and coupons."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Select, Table, Text, Update, any_, bindparam, func, insert, literal_column, select, update
from sqlalchemy import cast as cast_
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from tienda.orders.models import OUTBOX, Coupon, CouponRedemption, Order, OrderItem, OrderSequence
from tienda.platform.db import Database
from tienda.platform.events import OUTBOX_ROW_COLUMNS, event_params


async def coupon(session: AsyncSession, coupon_id: str, *, for_update: bool = False) -> Coupon | None:
    query = select(Coupon).where(Coupon.coupon_id == coupon_id)
    return await session.scalar(query.with_for_update() if for_update else query)


async def coupon_by_code(session: AsyncSession, code: str) -> Coupon | None:
    return await session.scalar(select(Coupon).where(Coupon.code == code.upper()))


async def coupons(session: AsyncSession, *, offset: int, limit: int, active: bool | None) -> tuple[list[Coupon], int]:
    """A page of coupons, newest first, and how many there are in all."""
    query = select(Coupon)
    if active is not None:
        query = query.where(Coupon.is_active.is_(active))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(query.order_by(Coupon.id.desc()).offset(offset).limit(limit))
    return list(rows), int(total or 0)


# -- orders ------------------------------------------------------------------------------


def _with_items(query: Select[Any]) -> Select[Any]:
    return query.options(selectinload(Order.items))


# The checkout's lookups, built once with their values bound at execution (building a select
# with its loader options and then its cache key on every call cost ~0.5 ms of CPU a lookup,
# a quarter of it, on the bench machine; every checkout reads its order four times).
_ORDER = _with_items(select(Order).where(Order.order_id == bindparam("order_id"))).execution_options(
    populate_existing=True
)
_ORDER_FOR_UPDATE = _ORDER.with_for_update(of=Order)
_ORDER_BY_KEY = _with_items(
    select(Order).where(Order.user_id == bindparam("user_id"), Order.idempotency_key == bindparam("key"))
)


async def order(session: AsyncSession, order_id: str, *, for_update: bool = False) -> Order | None:
    found: Order | None = await session.scalar(_ORDER_FOR_UPDATE if for_update else _ORDER, {"order_id": order_id})
    return found


async def order_by_key(session: AsyncSession, user_id: str, key: str) -> Order | None:
    found: Order | None = await session.scalar(_ORDER_BY_KEY, {"user_id": user_id, "key": key})
    return found


async def orders(
    session: AsyncSession,
    *,
    offset: int,
    limit: int,
    user_id: str | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[list[Order], int]:
    """A page of orders, newest first, and how many match in all."""
    query = select(Order)
    if user_id is not None:
        query = query.where(Order.user_id == user_id)
    if status is not None:
        query = query.where(Order.status == status)
    if since is not None:
        query = query.where(Order.created_at >= since)
    if until is not None:
        query = query.where(Order.created_at < until)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        _with_items(query.order_by(Order.created_at.desc(), Order.id.desc()).offset(offset).limit(limit))
    )
    return list(rows), int(total or 0)


async def orders_of_user_count(session: AsyncSession, user_id: str, *, excluding: tuple[str, ...]) -> int:
    """How many orders the user has in any status but these."""
    query = select(func.count()).where(Order.user_id == user_id, Order.status.not_in(excluding))
    return int(await session.scalar(query) or 0)


async def unfinished(session: AsyncSession, *, steps: tuple[str, ...], before: datetime, limit: int) -> list[str]:
    """Orders whose saga stopped at one of these steps and has not moved after `before` (one
    last moved at `before` itself has stalled for as long as asked: `resume(stalled_after=0)`)."""
    query = (
        select(Order.order_id)
        .where(Order.saga_step.in_(steps), Order.updated_at <= before)
        .order_by(Order.updated_at)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def move_step(
    session: AsyncSession, order_id: str, *, at: str, values: dict[str, Any], status: str | None = None
) -> bool:
    """Moves the order on from saga step `at` (and `status`, if given), if it is still there,
    in the session's transaction."""
    statement, params = _moving(order_id, at, values, status)
    result = await session.execute(statement, params)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def move_step_now(
    db: Database, order_id: str, *, at: str, values: dict[str, Any], status: str | None = None
) -> bool:
    """`move_step` as one statement that commits as it runs (`Database.run`: no transaction,
    no session)."""
    return bool(await db.run(*_moving(order_id, at, values, status)))


async def move_step_publishing(
    db: Database, order_id: str, *, at: str, values: dict[str, Any], status: str | None, event: dict[str, Any]
) -> bool:
    """`move_step` and, only if the order moved, its `event` (an `outbox_row`), in one statement
    that commits as it runs (`Database.multi_table_statements`). Whether it moved."""
    statement, params = _moving(order_id, at, values, status)
    return bool(await db.rows(_move_step_publishing(statement), params | event_params(event)))


@cache
def _move_step_publishing(moving: Update) -> Select[tuple[int]]:
    moved = moving.returning(cast(Table, Order.__table__).c.id).cte("m")
    return select(moved.c.id).add_cte(OUTBOX.add_event_for_each(moved).cte("e"))


def _moving(order_id: str, at: str, values: dict[str, Any], status: str | None) -> tuple[Update, dict[str, Any]]:
    params = {"order_id_": order_id, "at_": at} | ({"status_": status} if status is not None else {}) | values
    return _move_step(tuple(sorted(values)), status is not None), params


@cache
def _move_step(columns: tuple[str, ...], guard_status: bool) -> Update:
    """The guarded update of `move_step` that sets these columns (the saga moves by a few
    fixed sets), built once per set; a plain table update, as no session holds the row."""
    table = cast(Table, Order.__table__)
    guard = [table.c.order_id == bindparam("order_id_"), table.c.saga_step == bindparam("at_")]
    if guard_status:
        guard.append(table.c.status == bindparam("status_"))
    return update(table).where(*guard).values({table.c[name]: bindparam(name) for name in columns})


async def unpaid_expired(session: AsyncSession, *, now: datetime, limit: int) -> list[str]:
    """Orders still waiting for their payment after their expiry."""
    query = (
        select(Order.order_id)
        .where(Order.saga_step == "PAYMENT_PENDING", Order.expires_at <= now)
        .order_by(Order.expires_at)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def next_order_id(db: Database, now: datetime) -> str:
    """`ord_YYYYMMDD_NNNN`, the day's next number, taken in one statement committed at once.

    The day's row is locked for that statement only. Taken inside the order's transaction, it
    stayed locked until the order committed, and every checkout of the day queued behind the
    one before (the main wait under load, measured in pg_stat_activity). The price: an order
    whose transaction then fails leaves a gap in the day's numbers.

    One upsert, not an UPDATE then an INSERT when it matched nothing: on MySQL/MariaDB two
    orders opening a day that way each take a gap lock with the empty UPDATE, then each
    INSERT waits for the other's (a deadlock)."""
    day = order_day(now)
    upsert = _next_number(db.dialect)
    if db.dialect in ("mysql", "mariadb"):
        async with db.read_engine.connect() as conn:  # autocommit
            await conn.execute(upsert, {"day": day})
            last = await conn.scalar(_LAST_INSERT_ID)
    else:
        ((last,),) = await db.rows(upsert, {"day": day})  # autocommit
    return f"ord_{day}_{int(last or 0):04d}"


_LAST_INSERT_ID = select(func.last_insert_id())


def order_day(now: datetime) -> str:
    """The day part of an order's number ("YYYYMMDD"), each day numbered from 1."""
    return now.strftime("%Y%m%d")


# -- placing in one statement -------------------------------------------------------------


async def place(db: Database, order: Order, event: dict[str, Any], *, day: str) -> None:
    """The order CREATED with its items and its `event` (an `outbox_row`) in one statement that
    commits as it runs (`Database.multi_table_statements`): no BEGIN, no COMMIT, no session
    flush, one round trip where a transaction took five. The order's number is taken in the
    same statement (the upsert of `next_order_id` for `day`, "YYYYMMDD"): `order.order_id`
    and the event's `orderId` are set from it, and `order.id` from what the database gave the
    row. The items go as one array per column. A second order with the same Idempotency-Key is
    an IntegrityError, with nothing written, the day's number included (no gap)."""
    params: dict[str, Any] = {f"o_{name}": getattr(order, name) for name in _ORDER_COLUMNS}
    for name in _ITEM_COLUMNS:
        values = [getattr(item, name) for item in order.items]
        params[f"i_{name}"] = [json.dumps(v) for v in values] if name == "attributes" else values
    ((order.id, order.order_id),) = await db.rows(_place(), params | event_params(event) | {"day": day})
    event["payload"]["orderId"] = order.order_id


_ORDER_COLUMNS = tuple(c.key for c in cast(Table, Order.__table__).c if c.key not in ("id", "order_id"))
_ORDER_ID_PATH: Any = literal_column("ARRAY['orderId']")  # jsonb_set's path to the event's orderId
_ITEM_COLUMNS = tuple(c.key for c in cast(Table, OrderItem.__table__).c if c.key not in ("id", "order_id"))


@cache
def _place() -> Select[tuple[int, str]]:
    orders = cast(Table, Order.__table__)
    items = cast(Table, OrderItem.__table__)
    outbox = OUTBOX.outbox
    taken = _next_number("postgresql").cte("n")
    digits = cast_(taken.c.last, Text)
    # `ord_YYYYMMDD_NNNN` as next_order_id writes it: at least four digits, more past 9999.
    number = func.concat("ord_", bindparam("day"), "_", func.lpad(digits, func.greatest(4, func.length(digits)), "0"))
    numbered = select(number.label("order_id")).select_from(taken).cte("num")
    stored = (
        insert(orders)
        .from_select(
            ["order_id", *_ORDER_COLUMNS],
            select(numbered.c.order_id, *(bindparam(f"o_{n}", type_=orders.c[n].type) for n in _ORDER_COLUMNS)),
        )
        .returning(orders.c.id, orders.c.order_id)
    )
    order = stored.cte("o")

    def each(name: str) -> Any:
        column = items.c[name]
        element = Text() if name == "attributes" else column.type
        unnested = func.unnest(bindparam(f"i_{name}", type_=postgresql.ARRAY(element)))
        return cast_(unnested, postgresql.JSON) if name == "attributes" else unnested

    lines = insert(items).from_select(
        ["order_id", *_ITEM_COLUMNS], select(order.c.id, *(each(name) for name in _ITEM_COLUMNS))
    )

    def column(name: str) -> Any:
        value = bindparam(f"e_{name}", type_=outbox.c[name].type)
        if name != "payload":
            return value
        with_number = func.jsonb_set(cast_(value, postgresql.JSONB), _ORDER_ID_PATH, func.to_jsonb(order.c.order_id))
        return cast_(with_number, outbox.c.payload.type)

    published = insert(outbox).from_select(
        list(OUTBOX_ROW_COLUMNS), select(*(column(name) for name in OUTBOX_ROW_COLUMNS)).select_from(order)
    )
    return select(order.c.id, order.c.order_id).add_cte(lines.cte("i"), published.cte("e"))


# -- a payment's capture in one statement ------------------------------------------------


async def capture(
    db: Database, order_id: str, *, payment_id: str, steps: tuple[str, ...], now: datetime, processed: dict[str, Any]
) -> Order | None:
    """A gateway's capture of an order still CREATED and waiting for it at one of `steps`
    (not COD): the order moved to saga step CAPTURED, paid by `payment_id`, and the event's
    processed row (`processed`: the parameters of `OutboxTables.add_processed_for_each`), in
    one statement that commits as it runs (`Database.multi_table_statements`). The order as
    the saga's next steps need it (its key, people, state, total and lines: not its addresses,
    amounts but the total, or times), or None when it was not waiting, with nothing written.
    An event recorded before fails the statement (IntegrityError), with nothing written."""
    params = {"order_id": order_id, "payment_id": payment_id, "steps": list(steps), "now": now} | processed
    rows = await db.rows(_capture(), params)
    if not rows:
        return None
    head = dict(zip(_CAPTURED_ORDER, rows[0][: len(_CAPTURED_ORDER)], strict=True))
    lines = [dict(zip(_CAPTURED_ITEM, row[len(_CAPTURED_ORDER) :], strict=True)) for row in rows]
    return Order(**head, items=[OrderItem(**line) for line in lines if line["id"] is not None])


_CAPTURED_ORDER = (
    "id",
    "order_id",
    "user_id",
    "status",
    "payment_status",
    "payment_method",
    "payment_id",
    "payment_url",
    "currency",
    "total_amount",
    "refunded_amount",
    "tracking_number",
    "failure_reason",
    "saga_step",
)
_CAPTURED_ITEM = ("id", "product_id", "variant_id", "sku", "name", "quantity", "unit_price")


@cache
def _capture() -> Select[Any]:
    orders = cast(Table, Order.__table__)
    items = cast(Table, OrderItem.__table__)
    moved = (
        update(orders)
        .where(
            orders.c.order_id == bindparam("order_id"),
            orders.c.status == "CREATED",
            orders.c.saga_step == any_(bindparam("steps", type_=postgresql.ARRAY(orders.c.saga_step.type))),
            orders.c.payment_method != "COD",
        )
        .values(
            saga_step="CAPTURED",
            payment_id=bindparam("payment_id"),
            payment_status="CAPTURED",
            payment_url=None,
            updated_at=bindparam("now", type_=orders.c.updated_at.type),
        )
        .returning(*(orders.c[name] for name in _CAPTURED_ORDER))
        .cte("m")
    )
    recorded = OUTBOX.add_processed_for_each(moved).cte("p")
    lines = [items.c[name] for name in _CAPTURED_ITEM]
    return (
        select(*moved.c, *lines)
        .select_from(moved.outerjoin(items, items.c.order_id == moved.c.id))
        .order_by(items.c.id)
        .add_cte(recorded)
    )


@cache
def _next_number(dialect: str) -> Any:
    """The upsert of `next_order_id` for this dialect, built once; parameter: `day`."""
    if dialect in ("mysql", "mariadb"):
        # No RETURNING on an upsert here: LAST_INSERT_ID(expr) hands the value to this connection.
        upsert: Any = mysql_insert(OrderSequence).values(day=bindparam("day"), last=func.last_insert_id(1))
        return upsert.on_duplicate_key_update(last=func.last_insert_id(OrderSequence.last + 1))
    upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(OrderSequence).values(
        day=bindparam("day"), last=1
    )
    return upsert.on_conflict_do_update(
        index_elements=[OrderSequence.day], set_={"last": OrderSequence.last + 1}
    ).returning(OrderSequence.last)


# -- coupon redemptions ------------------------------------------------------------------


async def coupon_for_update(session: AsyncSession, code: str) -> Coupon | None:
    return await session.scalar(select(Coupon).where(Coupon.code == code.upper()).with_for_update())


async def redemptions_by(session: AsyncSession, coupon_pk: int, user_id: str) -> int:
    query = select(func.count()).where(CouponRedemption.coupon_id == coupon_pk, CouponRedemption.user_id == user_id)
    return int(await session.scalar(query) or 0)


async def redemption_of(session: AsyncSession, order_id: str) -> CouponRedemption | None:
    return await session.scalar(select(CouponRedemption).where(CouponRedemption.order_id == order_id))


async def coupon_by_pk_for_update(session: AsyncSession, pk: int) -> Coupon | None:
    return await session.scalar(select(Coupon).where(Coupon.id == pk).with_for_update())
