"""What other modules may ask of inventory (carts: what is available now; later orders:
reserve, release and commit through the same routes as `/api/v1/inventory`)."""

from __future__ import annotations

from typing import Protocol

from tienda.inventory import repository
from tienda.inventory.models import NO_VARIANT
from tienda.platform.runtime import Platform

StockKey = tuple[str, str | None]
"""(productId, variantId or None for a product without variants)."""


class InventoryClient(Protocol):
    async def available(self, product_ids: list[str]) -> dict[StockKey, int]:
        """Units available now of every stocked item of these products; an item inventory
        keeps no stock for is absent (nothing to sell)."""
        ...


class InProcessInventoryClient:
    """Calls straight into the inventory module, in a transaction of its own."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def available(self, product_ids: list[str]) -> dict[StockKey, int]:
        if not product_ids:
            return {}
        async with self.platform.db("inventory").reader() as uow:
            rows = await repository.available_of_products(uow.session, list(dict.fromkeys(product_ids)))
        return {(p, v if v != NO_VARIANT else None): max(a, 0) for (p, v), a in rows.items()}


def in_process_client(platform: Platform) -> InProcessInventoryClient:
    return InProcessInventoryClient(platform)
