"""Builds the inventory service from the platform, once per process."""

from __future__ import annotations

from datetime import timedelta

from tienda.inventory.service import InventoryService
from tienda.platform.jobs import Job
from tienda.platform.runtime import Platform


def inventory_service(platform: Platform) -> InventoryService:
    def build(p: Platform) -> InventoryService:
        return InventoryService(clock=p.clock, reservation_ttl=timedelta(seconds=p.settings.reservation_ttl_seconds))

    return platform.service("inventory", build)


def inventory_jobs(platform: Platform) -> list[Job]:
    async def release_expired() -> int:
        service = inventory_service(platform)
        async with platform.db("inventory").uow() as uow:
            released = await service.release_expired(uow)
            await uow.commit()
        return released

    return [
        Job(
            name="inventory.release_expired",
            interval_seconds=platform.settings.reservation_sweep_seconds,
            run=release_expired,
        )
    ]
