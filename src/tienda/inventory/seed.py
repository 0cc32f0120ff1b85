"""Demo stock, bulk-inserted: what `tienda seed` and the first start of `tienda dev` give the
catalog's demo products (the catalog's seed draws the numbers and keeps the same in its copy).

Rows go straight into the stock table with multi-row INSERTs and publish no events: hundreds
of thousands of `inventory.updated` would take minutes to relay, and the catalog, the only one
that keeps a copy, has written the same numbers already. Nothing is reserved; the audit trail
gets no movements (a seed is not a stock change anyone made).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert

from tienda.inventory.models import NO_VARIANT, StockItem
from tienda.platform.db import Database

DEMO_THRESHOLD = 5
"""Low-stock threshold of seeded items: a few sales of a demo item raise the alert."""


async def seed_stock(
    db: Database,
    items: Sequence[tuple[str, str | None, int]],
    *,
    now: datetime,
    threshold: int = DEMO_THRESHOLD,
    batch: int = 5000,
) -> int:
    """Adds one stock row per (product id, variant id or None, units); returns how many. The
    items must not be stocked yet (the unique key refuses a second row for one item)."""
    rows = [
        {
            "product_id": product_id,
            "variant_id": variant_id or NO_VARIANT,
            "stock_count": units,
            "reserved_count": 0,
            "threshold": threshold,
            "updated_at": now,
        }
        for product_id, variant_id, units in items
    ]
    async with db.uow() as uow:
        for start in range(0, len(rows), batch):
            await uow.session.execute(insert(StockItem), rows[start : start + batch])
        await uow.commit()
    return len(rows)
