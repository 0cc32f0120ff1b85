"""Use cases of inventory: reserve (all or nothing, idempotent by order), release, commit,
adjust, and the release of expired reservations. Each takes a unit of work, flushes, and
leaves the commit to its caller; every change of a row publishes `inventory.updated` (and
`inventory.low_stock` when available falls to the threshold) in the same transaction.

With the Redis strategy (`flash.py`) an entry that reserves and does not commit must call
`abandoned(uow)`, which gives the units taken in Redis back."""

from __future__ import annotations

from tienda.inventory.service.adjusting import Adjusting
from tienda.inventory.service.reading import Reading
from tienda.inventory.service.reserving import Reserving
from tienda.inventory.service.settling import Settling

__all__ = ["InventoryService"]


class InventoryService(Reserving, Settling, Adjusting, Reading):
    """Built once per process (`wiring.py`); its parts are one file per use case."""
