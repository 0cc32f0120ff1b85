"""Every query of inventory. Stock changes are guarded single-row UPDATEs: the condition that
keeps `available` ≥ 0 is part of the statement, so no interleaving of concurrent requests can
pass it twice (the row lock taken by the UPDATE serialises them, and each re-checks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, Update, and_, any_, bindparam, or_, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from tienda.inventory.models import Reservation, StockItem
from tienda.platform.db import Database, lock_matching, locking_by_id


class Counts(NamedTuple):
    """A stock row's figures as stored at one moment (read under its lock when changed)."""

    stock: int
    reserved: int
    threshold: int
    epoch: int

    @property
    def available(self) -> int:
        return self.stock - self.reserved


_COUNTS = (StockItem.stock_count, StockItem.reserved_count, StockItem.threshold, StockItem.cache_epoch)


def _counts(row: Any) -> Counts:
    return Counts(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def _moved(values: dict[str, Any], bump: bool) -> dict[str, Any]:
    """The SET of a change; `bump`: made without the Redis counter, which is then out of date."""
    return values | {"cache_epoch": StockItem.cache_epoch + 1} if bump else values


async def items_of(session: AsyncSession, product_id: str) -> list[StockItem]:
    query = select(StockItem).where(StockItem.product_id == product_id).order_by(StockItem.variant_id)
    # The guarded UPDATEs bypass the session's objects: read the rows as stored now.
    return list(await session.scalars(query.execution_options(populate_existing=True)))


async def item(
    session: AsyncSession, product_id: str, variant_id: str, *, for_update: bool = False
) -> StockItem | None:
    query = select(StockItem).where(StockItem.product_id == product_id, StockItem.variant_id == variant_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


_ITEM = (StockItem.product_id == bindparam("product_id_"), StockItem.variant_id == bindparam("variant_id_"))
"""One stock row, by the parameters `product_id_` and `variant_id_` (statements built once,
for those every checkout runs: building one per call cost about as much CPU as running it)."""
_COUNTS_OF_ITEM = select(*_COUNTS).where(*_ITEM)


async def counts(session: AsyncSession, product_id: str, variant_id: str) -> Counts:
    """The row as stored now (the guarded UPDATEs bypass the ORM's objects)."""
    row = (await session.execute(_COUNTS_OF_ITEM, {"product_id_": product_id, "variant_id_": variant_id})).one()
    return _counts(row)


async def counts_of(session: AsyncSession, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Counts]:
    """The rows of these (product, variant) keys as stored now; absent keys are missing."""
    if not keys:
        return {}
    match = or_(*(and_(StockItem.product_id == p, StockItem.variant_id == v) for p, v in keys))
    rows = await session.execute(select(StockItem.product_id, StockItem.variant_id, *_COUNTS).where(match))
    return {(str(r[0]), str(r[1])): _counts(r[2:]) for r in rows}


async def next_epoch(session: AsyncSession, product_id: str, variant_id: str) -> Counts | None:
    """Move the row's counter epoch on and return the row, locked until commit (None: no row).
    The UPDATE waits for every transaction holding the row, so what it returns is all that
    was committed before it, and nothing after it is (a Redis counter loaded from it is exact)."""
    statement = (
        update(StockItem)
        .where(StockItem.product_id == product_id, StockItem.variant_id == variant_id)
        .values(cache_epoch=StockItem.cache_epoch + 1)
        .execution_options(synchronize_session=False)
    )
    return await _changed_counts(session, statement, {}, product_id, variant_id)


async def _changed_one(session: AsyncSession, statement: object, values: dict[str, Any] | None = None) -> bool:
    result = await session.execute(statement.execution_options(synchronize_session=False), values)  # type: ignore[attr-defined]
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def hold(
    session: AsyncSession, product_id: str, variant_id: str, quantity: int, now: datetime, *, bump: bool = False
) -> Counts | None:
    """Reserve `quantity` if that many are available and return the row as it now is; None
    (nothing changed) otherwise. Where the database can, the counts come
    back with the UPDATE itself: the row stays locked until commit, so every round trip after
    the UPDATE is time other reservations of the same item wait."""
    statement = (
        update(StockItem)
        .where(
            StockItem.product_id == product_id,
            StockItem.variant_id == variant_id,
            StockItem.stock_count - StockItem.reserved_count >= quantity,
        )
        .values(_moved({"reserved_count": StockItem.reserved_count + quantity, "updated_at": now}, bump))
        .execution_options(synchronize_session=False)
    )
    return await _changed_counts(session, statement, {}, product_id, variant_id)


async def unhold(
    session: AsyncSession, product_id: str, variant_id: str, quantity: int, now: datetime, *, bump: bool = False
) -> Counts | None:
    """Held units go back to available; the row as it now is, None (nothing changed) if it
    did not hold that many."""
    statement = (
        update(StockItem)
        .where(
            StockItem.product_id == product_id,
            StockItem.variant_id == variant_id,
            StockItem.reserved_count >= quantity,
        )
        .values(_moved({"reserved_count": StockItem.reserved_count - quantity, "updated_at": now}, bump))
        .execution_options(synchronize_session=False)
    )
    return await _changed_counts(session, statement, {}, product_id, variant_id)


async def _changed_counts(
    session: AsyncSession, statement: Update, values: dict[str, Any], product_id: str, variant_id: str
) -> Counts | None:
    """Run a guarded UPDATE of one row; the row as it now is, None if it matched nothing.
    Where the database can, the counts come back with the UPDATE itself (one round trip
    fewer); MariaDB has no UPDATE ... RETURNING, so there they are read after it."""
    if session.bind is not None and session.bind.dialect.update_returning:
        row = (await session.execute(statement.returning(*_COUNTS), values)).first()
        return _counts(row) if row is not None else None
    if not await _changed_one(session, statement, values):
        return None
    return await counts(session, product_id, variant_id)


_CONSUME = (
    update(StockItem)
    .where(
        *_ITEM,
        StockItem.reserved_count >= bindparam("quantity"),
        StockItem.stock_count >= bindparam("quantity"),
    )
    .values(
        stock_count=StockItem.stock_count - bindparam("quantity"),
        reserved_count=StockItem.reserved_count - bindparam("quantity"),
        updated_at=bindparam("now"),
    )
    .execution_options(synchronize_session=False)
)


async def consume(
    session: AsyncSession, product_id: str, variant_id: str, quantity: int, now: datetime
) -> Counts | None:
    """Reserved units leave the stock (sold); the row as it now is, None (nothing changed) if
    it did not hold them."""
    values = {"product_id_": product_id, "variant_id_": variant_id, "quantity": quantity, "now": now}
    return await _changed_counts(session, _CONSUME, values, product_id, variant_id)


async def restock(
    session: AsyncSession, product_id: str, variant_id: str, delta: int, now: datetime, *, bump: bool = False
) -> bool:
    """Stock changes by `delta` unless it would fall below what is reserved."""
    return await _changed_one(
        session,
        update(StockItem)
        .where(
            StockItem.product_id == product_id,
            StockItem.variant_id == variant_id,
            StockItem.stock_count + delta >= StockItem.reserved_count,
        )
        .values(_moved({"stock_count": StockItem.stock_count + delta, "updated_at": now}, bump)),
    )


# -- reservations, locked by primary key -------------------------------------------------------
#
# A locking read that finds its rows through a range of an index (`order_id = ?` on the
# reservations' unique index, `status = 'RESERVED' AND expires_at < ?` on the expiry index)
# locks, in InnoDB, the gaps of that range too, up to the next row past it (next-key locks).
# A reservation of the same item, which holds the stock row that the release, the sale or the
# expiry job takes next, inserts its own row into such a gap: the next order's id comes right
# after the last order's, an unexpired row after the expired ones. Each then waits for the
# other: a deadlock every time they meet (`tests/inventory/test_expiry.py` makes both
# interleavings step by step). So these reads find the ids first, without a lock, and lock
# those rows by primary key (`platform.db.locking_by_id`, `lock_matching`), which locks the
# rows alone; what matters of a row is checked again under the lock, as stored then.
# PostgreSQL locks rows only, either way.

_BY_ITEM = (Reservation.product_id, Reservation.variant_id)
_OF_ORDER = Reservation.order_id == bindparam("order_id")
_RESERVATIONS = select(Reservation).where(_OF_ORDER).order_by(*_BY_ITEM)
_IDS_OF_ORDER = select(Reservation.id).where(_OF_ORDER)
_LOCK_BY_IDS = locking_by_id(
    select(Reservation).where(Reservation.id.in_(bindparam("ids", expanding=True))).order_by(*_BY_ITEM), Reservation
).with_for_update()


async def reservations(session: AsyncSession, order_id: str, *, for_update: bool = False) -> list[Reservation]:
    """The order's reservation rows, in item order; locked until commit with `for_update`
    (by primary key, with statements built once: a sale on MariaDB takes this path)."""
    params = {"order_id": order_id}
    if not for_update:
        return list(await session.scalars(_RESERVATIONS, params))
    ids = list(await session.scalars(_IDS_OF_ORDER, params))
    return list(await session.scalars(_LOCK_BY_IDS, {"ids": ids})) if ids else []


async def expired(session: AsyncSession, now: datetime, limit: int) -> list[Reservation]:
    """Up to `limit` reservations past their expiry at `now`, in item order, locked; those
    another transaction holds are skipped, and each is checked again as stored once locked."""
    past = (Reservation.status == "RESERVED", Reservation.expires_at < now)
    return await lock_matching(session, Reservation, past, order_by=_BY_ITEM, limit=limit)


_AVAILABLE = select(StockItem.product_id, StockItem.variant_id, StockItem.stock_count - StockItem.reserved_count)
# Built once, with the ids bound at execution. On PostgreSQL one array parameter: an IN list is
# rendered into the SQL again on every execution (a parameter per id), which with building the
# statement each time was two thirds of a cart's stock lookup (527 -> ~330 us of CPU).
_AVAILABLE_OF = {
    "postgresql": _AVAILABLE.where(StockItem.product_id == any_(bindparam("ids", type_=postgresql.ARRAY(String)))),
    "other": _AVAILABLE.where(StockItem.product_id.in_(bindparam("ids", expanding=True))),
}


async def available_of_products(db: Database, product_ids: list[str]) -> dict[tuple[str, str], int]:
    """Available units (stock - reserved) of every stock row of these products: plain columns,
    read past the ORM (`Database.rows`) as every cart read and write asks for them."""
    rows = await db.rows(_AVAILABLE_OF.get(db.dialect, _AVAILABLE_OF["other"]), {"ids": product_ids})
    return {(str(p), str(v)): int(a) for p, v, a in rows}


# -- reservations of one item in one statement (PostgreSQL) --------------------------------

_RESERVE_ORDERS = text(
    """
WITH wanted AS (
    SELECT w.order_id, w.quantity, w.expires_at
    FROM unnest(
        CAST(:order_ids AS VARCHAR[]), CAST(:quantities AS INTEGER[]), CAST(:expires AS TIMESTAMPTZ[])
    ) AS w(order_id, quantity, expires_at)
    WHERE NOT EXISTS (SELECT 1 FROM inventory_reservations r WHERE r.order_id = w.order_id)
), total AS (
    SELECT sum(quantity) AS quantity FROM wanted
), held AS (
    UPDATE inventory
    SET reserved_count = reserved_count + total.quantity, updated_at = CAST(:now AS TIMESTAMPTZ),
        cache_epoch = cache_epoch + CAST(:bump AS INTEGER)
    FROM total
    WHERE product_id = CAST(:product_id AS VARCHAR) AND variant_id = CAST(:variant_id AS VARCHAR)
      AND stock_count - reserved_count >= total.quantity
    RETURNING stock_count, reserved_count, threshold, cache_epoch, total.quantity
), reservation AS (
    INSERT INTO inventory_reservations
        (order_id, product_id, variant_id, quantity, status, expires_at, created_at, updated_at)
    SELECT wanted.order_id, CAST(:product_id AS VARCHAR), CAST(:variant_id AS VARCHAR), wanted.quantity,
        'RESERVED', wanted.expires_at, CAST(:now AS TIMESTAMPTZ), CAST(:now AS TIMESTAMPTZ)
    FROM wanted CROSS JOIN held
), movement AS (
    INSERT INTO inventory_movements
        (product_id, variant_id, kind, stock_delta, reserved_delta, order_id, created_at)
    SELECT CAST(:product_id AS VARCHAR), CAST(:variant_id AS VARCHAR), 'RESERVE', 0, wanted.quantity,
        wanted.order_id, CAST(:now AS TIMESTAMPTZ)
    FROM wanted CROSS JOIN held
), event AS (
    INSERT INTO inventory_outbox_events (event_id, type, source, payload, occurred_at, attempts)
    SELECT e.event_id, e.type, 'inventory',
        json_build_object(
            'productId', CAST(:product_id AS TEXT), 'variantId', CAST(:variant_json AS TEXT),
            'stockCount', stock_count, 'reserved', reserved_count, 'available', stock_count - reserved_count,
            'availableChange', -held.quantity, 'threshold', threshold
        ),
        CAST(:now AS TIMESTAMPTZ), 0
    FROM held CROSS JOIN (
        VALUES (1, CAST(:updated_id AS VARCHAR), CAST(:updated_type AS VARCHAR)),
               (2, CAST(:low_id AS VARCHAR), CAST(:low_type AS VARCHAR))
    ) AS e(n, event_id, type)
    WHERE e.n = 1
       OR stock_count - reserved_count <= threshold AND threshold < stock_count - reserved_count + held.quantity
    ORDER BY e.n
)
SELECT held.stock_count, held.reserved_count, held.threshold, held.cache_epoch,
    (SELECT array_agg(order_id) FROM wanted)
FROM (SELECT 1) AS one LEFT JOIN held ON true
"""
)


_SELL_ONE = text(
    """
WITH mine AS (
    SELECT id, product_id, variant_id, quantity, status, expires_at
    FROM inventory_reservations
    WHERE order_id = CAST(:order_id AS VARCHAR)
    FOR UPDATE
), one AS (
    SELECT id, product_id, variant_id, quantity, expires_at
    FROM mine
    WHERE status = 'RESERVED' AND (SELECT count(*) FROM mine) = 1
), sold AS (
    UPDATE inventory
    SET stock_count = stock_count - one.quantity, reserved_count = reserved_count - one.quantity,
        updated_at = CAST(:now AS TIMESTAMPTZ)
    FROM one
    WHERE inventory.product_id = one.product_id AND inventory.variant_id = one.variant_id
      AND inventory.reserved_count >= one.quantity AND inventory.stock_count >= one.quantity
    RETURNING one.id, one.product_id, one.variant_id, one.quantity, one.expires_at,
        inventory.stock_count, inventory.reserved_count, inventory.threshold
), closed AS (
    UPDATE inventory_reservations
    SET status = 'COMMITTED', updated_at = CAST(:now AS TIMESTAMPTZ)
    FROM sold
    WHERE inventory_reservations.id = sold.id
), movement AS (
    INSERT INTO inventory_movements
        (product_id, variant_id, kind, stock_delta, reserved_delta, order_id, created_at)
    SELECT product_id, variant_id, 'COMMIT', -quantity, -quantity, CAST(:order_id AS VARCHAR),
        CAST(:now AS TIMESTAMPTZ)
    FROM sold
), event AS (
    INSERT INTO inventory_outbox_events (event_id, type, source, payload, occurred_at, attempts)
    SELECT CAST(:event_id AS VARCHAR), CAST(:event_type AS VARCHAR), 'inventory',
        json_build_object(
            'productId', product_id, 'variantId', NULLIF(variant_id, ''),
            'stockCount', stock_count, 'reserved', reserved_count, 'available', stock_count - reserved_count,
            'availableChange', 0, 'threshold', threshold
        ),
        CAST(:now AS TIMESTAMPTZ), 0
    FROM sold
)
SELECT product_id, variant_id, quantity, expires_at FROM sold
"""
)


async def sell_one(db: Database, *, order_id: str, now: datetime, event: tuple[str, str]) -> Reservation | None:
    """An order holding one item, and nothing else, sells it in one statement that commits by
    itself: the reservation COMMITTED, the units out of stock and reserved, the audit row, and
    the row's change published (`event`: the id and type of `inventory.updated`; a sale leaves
    available as it was, so never `inventory.low_stock`). None, with nothing written, for any
    other order (several items, one released, already sold, unknown) or a stock row that does
    not hold the units: the general path answers those."""
    params = {"order_id": order_id, "now": now, "event_id": event[0], "event_type": event[1]}
    rows = await db.rows(_SELL_ONE, params)
    if not rows:
        return None
    product_id, variant_id, quantity, expires_at = rows[0]
    return Reservation(
        order_id=order_id,
        status="COMMITTED",
        product_id=product_id,
        variant_id=variant_id,
        quantity=quantity,
        expires_at=expires_at,
    )


class Wanted(NamedTuple):
    """One order's reservation of one item."""

    order_id: str
    quantity: int
    expires_at: datetime


class Held(NamedTuple):
    """What `reserve_orders` did: the row as it now is when it reserved (None: nothing was
    written), and the orders that held no reservation before it (those it reserved, or those
    that did not fit)."""

    counts: Counts | None
    fresh: frozenset[str]


async def reserve_orders(
    db: Database,
    *,
    product_id: str,
    variant_id: str,
    wanted: list[Wanted],
    now: datetime,
    bump: bool,
    events: tuple[tuple[str, str], tuple[str, str]],
) -> Held:
    """The reservations of one item by several orders as one statement, which commits by
    itself, all of them or none: the guarded UPDATE of their sum, a reservation and an audit
    row per order, and one change of the row published (`events`: (id, type) of
    `inventory.updated`, then of `inventory.low_stock`, published only when this brings available
    down to the threshold). Orders that hold a reservation already are left out (not fresh).
    The stock row is locked only while the statement runs, not for round trips through the
    event loop until a COMMIT. Nothing is written when their sum is not available. Two of them
    for the same order, or a concurrent reservation of one of them, fail it (IntegrityError)."""
    (updated_id, updated_type), (low_id, low_type) = events
    params = {
        "order_ids": [w.order_id for w in wanted],
        "quantities": [w.quantity for w in wanted],
        "expires": [w.expires_at for w in wanted],
        "product_id": product_id,
        "variant_id": variant_id,
        "variant_json": variant_id or None,
        "now": now,
        "bump": 1 if bump else 0,
        "updated_id": updated_id,
        "updated_type": updated_type,
        "low_id": low_id,
        "low_type": low_type,
    }
    (row,) = await db.rows(_RESERVE_ORDERS, params)
    fresh = frozenset(row[4] or ())
    return Held(_counts(row) if row[0] is not None else None, fresh)
