"""Every query of orders: coupons so far."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tienda.orders.models import Coupon


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
