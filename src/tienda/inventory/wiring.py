"""Builds the inventory service from the platform, once per process."""

from __future__ import annotations

from datetime import timedelta

from tienda.inventory.service import InventoryService
from tienda.platform.runtime import Platform


def inventory_service(platform: Platform) -> InventoryService:
    def build(p: Platform) -> InventoryService:
        return InventoryService(clock=p.clock, reservation_ttl=timedelta(seconds=p.settings.reservation_ttl_seconds))

    return platform.service("inventory", build)
