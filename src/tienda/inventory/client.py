"""What other modules may ask of inventory: carts, what is available now; orders, to reserve,
release and commit an order's units (the same use cases as `/api/v1/inventory`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol, TypeVar

from pydantic import Field, TypeAdapter, with_config

from tienda.inventory.errors import InsufficientStock, ReservationClosed, ReservationNotFound
from tienda.inventory.models import NO_VARIANT
from tienda.inventory.schemas import ItemIn, ReservationRead
from tienda.inventory.service import InventoryService
from tienda.inventory.wiring import inventory_service
from tienda.platform.db import UnitOfWork
from tienda.platform.http import Refused, Remote, segment
from tienda.platform.runtime import Platform
from tienda.platform.schemas import WIRE, Schema

T = TypeVar("T")

STOCK_SHORT = "INSUFFICIENT_STOCK"
STOCK_GONE = "STOCK_GONE"
"""Codes of the 409s by which `/internal/inventory` says `StockShort` and `StockGone`."""


@with_config(WIRE)
@dataclass(frozen=True)
class StockLine:
    product_id: str
    variant_id: str | None
    quantity: int


@dataclass(frozen=True)
class Shortage:
    field: str
    message: str


class StockShort(Exception):
    """Not every line could be reserved; nothing was."""

    def __init__(self, lines: list[Shortage]) -> None:
        super().__init__("; ".join(f"{s.field}: {s.message}" for s in lines))
        self.lines = lines


class StockGone(Exception):
    """The order holds nothing any more to sell (its reservation expired or was released)."""


StockKey = tuple[str, str | None]
"""(productId, variantId or None for a product without variants)."""


class InventoryClient(Protocol):
    async def available(self, product_ids: list[str]) -> dict[StockKey, int]:
        """Units available now of every stocked item of these products; an item inventory
        keeps no stock for is absent (nothing to sell)."""
        ...

    async def reserve(self, order_id: str, lines: list[StockLine], *, ttl: timedelta) -> datetime:
        """Hold every line for the order, or none (`StockShort`); when the hold expires.
        Asking again for the same order returns the same hold."""
        ...

    async def release(self, order_id: str) -> None:
        """Give back what the order holds (nothing, if it holds nothing any more)."""
        ...

    async def commit(self, order_id: str) -> None:
        """The order's held units are sold. Idempotent. `StockGone` if it holds nothing to sell."""
        ...

    async def give_back(self, order_id: str) -> None:
        """Units the order bought return to the stock (a cancelled sale). Idempotent."""
        ...


class InProcessInventoryClient:
    """Calls straight into the inventory module, in a transaction of its own."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def available(self, product_ids: list[str]) -> dict[StockKey, int]:
        if not product_ids:
            return {}
        rows = await inventory_service(self.platform).available(self.platform.db("inventory"), product_ids)
        return {(p, v if v != NO_VARIANT else None): max(a, 0) for (p, v), a in rows.items()}

    async def reserve(self, order_id: str, lines: list[StockLine], *, ttl: timedelta) -> datetime:
        items = [ItemIn(product_id=x.product_id, variant_id=x.variant_id, quantity=x.quantity) for x in lines]
        try:
            held = await self._committed(lambda s, uow: s.reserve(uow, order_id=order_id, items=items, ttl=ttl))
        except InsufficientStock as exc:
            raise StockShort([Shortage(d.field or "", d.message) for d in exc.details or []]) from exc
        return held.expires_at

    async def release(self, order_id: str) -> None:
        held = await self._reservation(order_id)
        if held is not None and held.status == "RESERVED":
            await self._committed(lambda s, uow: s.release(uow, order_id=order_id, items=None))

    async def commit(self, order_id: str) -> None:
        try:
            await self._committed(lambda s, uow: s.commit(uow, order_id=order_id))
        except (ReservationClosed, ReservationNotFound) as exc:
            raise StockGone(order_id) from exc

    async def give_back(self, order_id: str) -> None:
        await self._committed(lambda s, uow: s.give_back(uow, order_id=order_id))

    async def _reservation(self, order_id: str) -> ReservationRead | None:
        service = inventory_service(self.platform)
        async with self.platform.db("inventory").reader() as uow:
            try:
                return await service.reservation(uow, order_id=order_id)
            except ReservationNotFound:
                return None

    async def _committed(self, work: Callable[[InventoryService, UnitOfWork], Awaitable[T]]) -> T:
        """As the inventory routes run a use case (`InventoryService.committed`)."""
        service = inventory_service(self.platform)
        return await service.committed(self.platform.db("inventory"), partial(work, service))


class StockQuery(Schema):
    product_ids: list[str]


@with_config(WIRE)
@dataclass(frozen=True)
class StockLevel:
    product_id: str
    variant_id: str | None
    available: int


class Reserve(Schema):
    lines: list[StockLine] = Field(min_length=1)
    ttl_seconds: float = Field(gt=0)


class Held(Schema):
    expires_at: datetime


LEVELS = TypeAdapter(list[StockLevel])


class HttpInventoryClient:
    """The inventory service's `/internal/inventory` routes (inventory/internal.py). Every call
    is retried: `available` reads, and the others are idempotent by order id (a reservation
    asked for again is the same hold; a release, commit or give-back done is not done twice)."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    async def available(self, product_ids: list[str]) -> dict[StockKey, int]:
        if not product_ids:
            return {}
        body = StockQuery(product_ids=product_ids).model_dump_json(by_alias=True).encode()
        response = await self.remote.call("POST", "/internal/inventory/available", body=body, idempotent=True)
        return {(x.product_id, x.variant_id): x.available for x in LEVELS.validate_json(response.content)}

    async def reserve(self, order_id: str, lines: list[StockLine], *, ttl: timedelta) -> datetime:
        body = Reserve(lines=lines, ttl_seconds=ttl.total_seconds()).model_dump_json(by_alias=True).encode()
        try:
            response = await self.remote.call("POST", self._path(order_id), body=body, idempotent=True)
        except Refused as refused:
            if refused.code == STOCK_SHORT:
                raise StockShort([Shortage(d.field or "", d.message) for d in refused.details or []]) from refused
            raise
        return Held.model_validate_json(response.content).expires_at

    async def release(self, order_id: str) -> None:
        await self.remote.call("POST", self._path(order_id, "release"), idempotent=True)

    async def commit(self, order_id: str) -> None:
        try:
            await self.remote.call("POST", self._path(order_id, "commit"), idempotent=True)
        except Refused as refused:
            if refused.code == STOCK_GONE:
                raise StockGone(order_id) from refused
            raise

    async def give_back(self, order_id: str) -> None:
        await self.remote.call("POST", self._path(order_id, "give-back"), idempotent=True)

    @staticmethod
    def _path(order_id: str, action: str | None = None) -> str:
        path = f"/internal/inventory/reservations/{segment(order_id)}"
        return f"{path}/{action}" if action else path


def inventory_client(platform: Platform) -> InventoryClient:
    """Inventory as this process reaches it: in process, or over HTTP."""
    return platform.client("inventory", in_process=InProcessInventoryClient, http=HttpInventoryClient)
