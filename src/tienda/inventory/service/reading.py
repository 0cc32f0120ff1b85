"""Reading stock and reservations."""

from __future__ import annotations

from functools import cached_property

from tienda.inventory import repository
from tienda.inventory.errors import (
    ReservationNotFound,
    StockItemNotFound,
)
from tienda.inventory.schemas import ProductStock, ReservationRead, VariantStock
from tienda.inventory.service.base import ServiceBase
from tienda.platform.combining import Combiner
from tienda.platform.db import Database, UnitOfWork


class Reading(ServiceBase):
    async def available(self, db: Database, product_ids: list[str]) -> dict[tuple[str, str], int]:
        """Available units of every stock row of these products (`repository.available_of_products`).
        Reads asked while one is running go together in the next statement: every cart request
        asks, and under load a process has many in flight, each a round trip of its own."""
        return await self._reads.submit(db, list(dict.fromkeys(product_ids)))

    @cached_property
    def _reads(self) -> Combiner[Database, list[str], dict[tuple[str, str], int]]:
        return Combiner(self._read_together, max_batch=32)

    @staticmethod
    async def _read_together(db: Database, asked: list[list[str]]) -> list[dict[tuple[str, str], int]]:
        found = await repository.available_of_products(db, list(dict.fromkeys(p for ids in asked for p in ids)))
        by_product: dict[str, dict[tuple[str, str], int]] = {}
        for key, n in found.items():
            by_product.setdefault(key[0], {})[key] = n
        return [{key: n for p in ids for key, n in by_product.get(p, {}).items()} for ids in asked]

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
