"""Builds the inventory service from the platform, once per process."""

from __future__ import annotations

from datetime import timedelta

from tienda.inventory.counters import Counters
from tienda.inventory.flash import FlashSale
from tienda.inventory.service import InventoryService
from tienda.platform.jobs import Job
from tienda.platform.runtime import Platform


def inventory_service(platform: Platform) -> InventoryService:
    def build(p: Platform) -> InventoryService:
        settings = p.settings
        flash = None
        if p.redis is not None:  # even with no item on it: changes then mark counters out of date
            counters = Counters(p.redis, prefix=settings.redis_prefix, ttl_seconds=settings.inventory_redis_ttl_seconds)
            flash = FlashSale(
                counters, everything=settings.inventory_strategy == "redis", items=settings.inventory_redis_items
            )
        return InventoryService(
            clock=p.clock,
            reservation_ttl=timedelta(seconds=settings.reservation_ttl_seconds),
            reservations_per_statement=settings.reservations_per_statement,
            flash=flash,
        )

    return platform.service("inventory", build)


def inventory_jobs(platform: Platform) -> list[Job]:
    async def release_expired() -> int:
        # As every inventory use case: run again if the database gives it up (a deadlock with
        # the reservations it races on MariaDB), and what it took in Redis given back if it fails.
        service = inventory_service(platform)
        return await service.committed(platform.db("inventory"), service.release_expired)

    return [
        Job(
            name="inventory.release_expired",
            interval_seconds=platform.settings.reservation_sweep_seconds,
            run=release_expired,
        )
    ]
