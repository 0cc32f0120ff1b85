"""Every query of inventory. Stock changes are guarded single-row UPDATEs: the condition that
keeps `available` ≥ 0 is part of the statement, so no interleaving of concurrent requests can
pass it twice (the row lock taken by the UPDATE serialises them, and each re-checks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from tienda.inventory.models import Reservation, StockItem


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


async def counts(session: AsyncSession, product_id: str, variant_id: str) -> tuple[int, int, int]:
    """(stock, reserved, threshold) as stored now (the guarded UPDATEs bypass the ORM's objects)."""
    row = (
        await session.execute(
            select(StockItem.stock_count, StockItem.reserved_count, StockItem.threshold).where(
                StockItem.product_id == product_id, StockItem.variant_id == variant_id
            )
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def _changed_one(session: AsyncSession, statement: object) -> bool:
    result = await session.execute(statement.execution_options(synchronize_session=False))  # type: ignore[attr-defined]
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def hold(
    session: AsyncSession, product_id: str, variant_id: str, quantity: int, now: datetime
) -> tuple[int, int, int] | None:
    """Reserve `quantity` if that many are available and return (stock, reserved, threshold)
    as they now are; None (nothing changed) otherwise. Where the database can, the counts come
    back with the UPDATE itself: the row stays locked until commit, so every round trip after
    the UPDATE is time other reservations of the same item wait."""
    statement = (
        update(StockItem)
        .where(
            StockItem.product_id == product_id,
            StockItem.variant_id == variant_id,
            StockItem.stock_count - StockItem.reserved_count >= quantity,
        )
        .values(reserved_count=StockItem.reserved_count + quantity, updated_at=now)
    )
    if session.bind is not None and session.bind.dialect.update_returning:
        returning = statement.returning(StockItem.stock_count, StockItem.reserved_count, StockItem.threshold)
        row = (await session.execute(returning.execution_options(synchronize_session=False))).first()
        return (int(row[0]), int(row[1]), int(row[2])) if row is not None else None
    if not await _changed_one(session, statement):  # MariaDB: no UPDATE ... RETURNING
        return None
    return await counts(session, product_id, variant_id)


async def unhold(session: AsyncSession, product_id: str, variant_id: str, quantity: int, now: datetime) -> bool:
    return await _changed_one(
        session,
        update(StockItem)
        .where(
            StockItem.product_id == product_id,
            StockItem.variant_id == variant_id,
            StockItem.reserved_count >= quantity,
        )
        .values(reserved_count=StockItem.reserved_count - quantity, updated_at=now),
    )


async def consume(session: AsyncSession, product_id: str, variant_id: str, quantity: int, now: datetime) -> bool:
    """Reserved units leave the stock (sold)."""
    return await _changed_one(
        session,
        update(StockItem)
        .where(
            StockItem.product_id == product_id,
            StockItem.variant_id == variant_id,
            StockItem.reserved_count >= quantity,
            StockItem.stock_count >= quantity,
        )
        .values(
            stock_count=StockItem.stock_count - quantity,
            reserved_count=StockItem.reserved_count - quantity,
            updated_at=now,
        ),
    )


async def restock(session: AsyncSession, product_id: str, variant_id: str, delta: int, now: datetime) -> bool:
    """Stock changes by `delta` unless it would fall below what is reserved."""
    return await _changed_one(
        session,
        update(StockItem)
        .where(
            StockItem.product_id == product_id,
            StockItem.variant_id == variant_id,
            StockItem.stock_count + delta >= StockItem.reserved_count,
        )
        .values(stock_count=StockItem.stock_count + delta, updated_at=now),
    )


async def reservations(session: AsyncSession, order_id: str, *, for_update: bool = False) -> list[Reservation]:
    query = (
        select(Reservation)
        .where(Reservation.order_id == order_id)
        .order_by(Reservation.product_id, Reservation.variant_id)
    )
    if for_update:
        query = query.with_for_update()
    return list(await session.scalars(query))


async def expired(session: AsyncSession, now: datetime, limit: int) -> list[Reservation]:
    query = (
        select(Reservation)
        .where(Reservation.status == "RESERVED", Reservation.expires_at < now)
        .order_by(Reservation.product_id, Reservation.variant_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(await session.scalars(query))



async def available_of_products(session: AsyncSession, product_ids: list[str]) -> dict[tuple[str, str], int]:
    """Available units (stock - reserved) of every stock row of these products."""
    rows = await session.execute(
        select(StockItem.product_id, StockItem.variant_id, StockItem.stock_count - StockItem.reserved_count).where(
            StockItem.product_id.in_(product_ids)
        )
    )
    return {(str(p), str(v)): int(a) for p, v, a in rows}
