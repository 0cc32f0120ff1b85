"""Reading stock and reservations."""

from __future__ import annotations

from tienda.inventory import repository
from tienda.inventory.errors import (
    ReservationNotFound,
    StockItemNotFound,
)
from tienda.inventory.schemas import ProductStock, ReservationRead, VariantStock
from tienda.inventory.service.base import ServiceBase
from tienda.platform.db import UnitOfWork


class Reading(ServiceBase):
    async def stock(self, uow: UnitOfWork, *, product_id: str) -> ProductStock:
        rows = await repository.items_of(uow.session, product_id)
        if not rows:
            raise StockItemNotFound()
        variants = [
            VariantStock(
                variant_id=r.variant_id or None,
                stock_count=r.stock_count,
                reserved=r.reserved_count,
                available=r.stock_count - r.reserved_count,
                threshold=r.threshold,
                updated_at=r.updated_at,
            )
            for r in rows
        ]
        return ProductStock(
            product_id=product_id,
            stock_count=sum(v.stock_count for v in variants),
            reserved=sum(v.reserved for v in variants),
            available=sum(v.available for v in variants),
            variants=variants,
        )

    async def reservation(self, uow: UnitOfWork, *, order_id: str) -> ReservationRead:
        rows = await repository.reservations(uow.session, order_id)
        if not rows:
            raise ReservationNotFound()
        return self._reservation_read(order_id, rows)
