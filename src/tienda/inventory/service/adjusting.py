"""Restocks and corrections."""

from __future__ import annotations

from tienda.inventory import repository
from tienda.inventory.errors import (
    BelowReserved,
)
from tienda.inventory.models import NO_VARIANT, StockItem
from tienda.inventory.schemas import ProductStock
from tienda.inventory.service.base import flush_rows
from tienda.inventory.service.reading import Reading
from tienda.platform.db import UnitOfWork


class Adjusting(Reading):  # it answers with the stock as it now is
    async def adjust(
        self,
        uow: UnitOfWork,
        *,
        product_id: str,
        variant_id: str | None,
        delta: int,
        reason: str,
        threshold: int | None,
        actor: str | None,
    ) -> ProductStock:
        """A restock or a correction; stock never falls below what is reserved."""
        variant = variant_id or NO_VARIANT
        now = self.clock.now()
        row = await repository.item(uow.session, product_id, variant, for_update=True)
        if row is None:
            if delta < 0:
                raise BelowReserved()
            row = StockItem(
                product_id=product_id,
                variant_id=variant,
                stock_count=delta,
                reserved_count=0,
                threshold=threshold or 0,
                updated_at=now,
            )
            uow.session.add(row)
            await flush_rows(uow)  # a concurrent first adjust of the same item fails here
            before = 0
            created = True
        else:
            before = row.stock_count - row.reserved_count
            bump = self._bypasses((product_id, variant))
            if delta and not await repository.restock(uow.session, product_id, variant, delta, now, bump=bump):
                raise BelowReserved()
            if threshold is not None:
                row.threshold = threshold
                row.updated_at = now
            await uow.session.flush()
            created = False
        counts = await self._moved(
            uow, product_id, variant, "ADJUST", delta, 0, reason=reason, actor=actor, before=before
        )
        if not created:  # an item created just now has no counter yet
            self._after_commit(uow, [((product_id, variant), delta, counts.epoch)])
        return await self.stock(uow, product_id=product_id)
