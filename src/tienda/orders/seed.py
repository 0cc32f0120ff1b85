"""Demo coupons: `NEWUSER10`, 10% off a buyer's first order (DESIGN.md section 5)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from tienda.orders.models import Coupon
from tienda.platform.db import Database
from tienda.platform.ids import new_public_id

NEWUSER10 = {
    "code": "NEWUSER10",
    "description": "10% off your first order",
    "discount_type": "PERCENT",
    "value": Decimal("10.00"),
    "min_order_amount": Decimal("0.00"),
    "first_order_only": True,
    "is_active": True,
}


async def seed_coupons(db: Database, *, now: datetime) -> int:
    """Creates the demo coupons that do not exist yet; how many it created."""
    async with db.uow() as uow:
        if await uow.session.scalar(select(Coupon.id).where(Coupon.code == NEWUSER10["code"])) is not None:
            return 0
        uow.session.add(
            Coupon(coupon_id=new_public_id("cpn"), **NEWUSER10, used_count=0, created_at=now, updated_at=now)
        )
        await uow.commit()
    return 1
