"""Every query of orders and coupons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from tienda.orders.models import Coupon, CouponRedemption, Order, OrderSequence


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


async def order(session: AsyncSession, order_id: str, *, for_update: bool = False) -> Order | None:
    query = _with_items(select(Order).where(Order.order_id == order_id))
    if for_update:
        query = query.with_for_update(of=Order)
    found: Order | None = await session.scalar(query.execution_options(populate_existing=True))
    return found


async def order_by_key(session: AsyncSession, user_id: str, key: str) -> Order | None:
    query = _with_items(select(Order).where(Order.user_id == user_id, Order.idempotency_key == key))
    found: Order | None = await session.scalar(query)
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


async def unpaid_expired(session: AsyncSession, *, now: datetime, limit: int) -> list[str]:
    """Orders still waiting for their payment after their expiry."""
    query = (
        select(Order.order_id)
        .where(Order.saga_step == "PAYMENT_PENDING", Order.expires_at <= now)
        .order_by(Order.expires_at)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def next_order_id(session: AsyncSession, now: datetime) -> str:
    """`ord_YYYYMMDD_NNNN`, the day's next number. The day's row stays locked until the order
    commits, so two orders never get one number (and numbers have no gaps but rollbacks').

    One upsert, not an UPDATE then an INSERT when it matched nothing: on MySQL/MariaDB two
    orders opening a day that way each take a gap lock with the empty UPDATE, then each
    INSERT waits for the other's (a deadlock)."""
    day = now.strftime("%Y%m%d")
    dialect = session.get_bind().dialect.name
    if dialect in ("mysql", "mariadb"):
        upsert: Any = mysql_insert(OrderSequence).values(day=day, last=1)
        upsert = upsert.on_duplicate_key_update(last=OrderSequence.last + 1)
    else:
        upsert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(OrderSequence).values(
            day=day, last=1
        )
        upsert = upsert.on_conflict_do_update(index_elements=[OrderSequence.day], set_={"last": OrderSequence.last + 1})
    await session.execute(upsert)
    last = await session.scalar(select(OrderSequence.last).where(OrderSequence.day == day))
    return f"ord_{day}_{int(last or 0):04d}"


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
