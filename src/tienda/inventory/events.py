"""Events inventory publishes (carts, the catalog's stock figures and search consume them)."""

from __future__ import annotations

INVENTORY_UPDATED = "inventory.updated"
LOW_STOCK = "inventory.low_stock"
