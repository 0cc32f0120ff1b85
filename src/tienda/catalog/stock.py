"""The catalog's copy of inventory's available units, kept from `inventory.updated`.

Inventory owns the stock; the catalog keeps, per variant (and per product without variants),
the `available` of the last event it applied and that event's time. Events come at least
once and not necessarily in order: a duplicate is dropped by its id (the consumer's processed
events), and an event older than the copy is ignored, so a late one never brings back an old
figure. Events of one stock row are written under that row's lock, so their times follow the
order of the changes; two events of the same instant apply in the order they arrive.

An item the catalog does not know (a product or variant deleted since, or never made) is
skipped. A change the public can see refreshes the cached product detail once committed; a
change of whether a published product can be bought at all (out of stock, back in stock) is
published as `product.availability_changed`, which search follows. A unit more or less does
not: search would otherwise rewrite its index on every reservation of a popular item.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tienda.catalog import events, repository
from tienda.catalog.models import Product, Variant
from tienda.catalog.service import CatalogService, available, product_cache_key
from tienda.inventory import events as inventory_events
from tienda.platform.db import UnitOfWork
from tienda.platform.events import Consumer, Event
from tienda.platform.observability import get_logger

log = get_logger("tienda.catalog.stock")

CONSUMER = "catalog.stock_copy"


@dataclass(frozen=True)
class StockFigure:
    """What an `inventory.updated` tells the catalog."""

    product_id: str
    variant_id: str | None
    available: int
    at: datetime

    @classmethod
    def of(cls, event: Event) -> StockFigure | None:
        payload: dict[str, Any] = event.payload
        try:
            variant = payload.get("variantId")
            return cls(
                product_id=str(payload["productId"]),
                variant_id=str(variant) if variant else None,
                available=max(0, int(payload["available"])),
                at=event.occurred_at,
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class StockCopy:
    catalog: CatalogService

    async def apply(self, uow: UnitOfWork, figure: StockFigure) -> bool:
        """Take the figure into the copy unless it is older than it; True when the copy changed.

        The product row is locked first, as every product write does, so the product the
        cache and the event get is whole and the event's time follows the product's last change.
        A figure the copy holds already (a change and its undoing, the second handled first; a
        sale published before `availableChange` existed) only moves the copy's time on, without
        reading the product."""
        if await repository.stock_copy_still(
            uow.session, figure.product_id, figure.variant_id, available=figure.available, at=figure.at
        ):
            return False
        product = await repository.product(uow.session, figure.product_id, for_update=True)
        if product is None:
            return False
        holder: Product | Variant | None = product
        if figure.variant_id is not None:
            holder = next((v for v in product.variants if v.variant_id == figure.variant_id), None)
        if holder is None:
            return False
        if holder.stock_updated_at is not None and figure.at < holder.stock_updated_at:
            return False
        could_buy = available(product) > 0
        changed = holder.stock_available != figure.available
        holder.stock_available = figure.available
        holder.stock_updated_at = figure.at  # even unchanged: an older event must not win later
        await uow.session.flush()
        if not changed or not product.is_active or product.deleted_at is not None:
            return changed
        read = await self.catalog._product_read(uow, product)
        body = read.model_dump_json(by_alias=True).encode()
        uow.after_commit(lambda: self._refresh_cache(product.product_id, body))
        if (read.stock > 0) != could_buy:
            # Never older than the product's last change, whatever the clocks of two hosts say.
            at = max(self.catalog.clock.now(), product.updated_at)
            payload = {"productId": product.product_id, "product": read.model_dump(mode="json", by_alias=True)}
            await uow.publish(events.PRODUCT_AVAILABILITY_CHANGED, payload, at=at)
        return True

    async def _refresh_cache(self, product_id: str, body: bytes) -> None:
        try:
            await self.catalog.cache.set(product_cache_key(product_id), body, ttl=self.catalog.cache_ttl)
        except Exception as exc:  # committed already: the entry expires with its TTL
            log.warning("stock_cache_refresh_failed", product_id=product_id, error=repr(exc))


def consumers(catalog: CatalogService) -> list[Consumer]:
    copy = StockCopy(catalog)

    async def take(event: Event, uow: UnitOfWork) -> None:
        figure = StockFigure.of(event)
        if figure is None:
            log.warning("inventory_event_unreadable", event_id=event.id, payload=event.payload)
            return
        await copy.apply(uow, figure)

    def item(event: Event) -> tuple[Any, Any]:
        return event.payload.get("productId"), event.payload.get("variantId")

    # Each event carries the row's whole counts: of several about one item, the latest says it all.
    return [
        Consumer(
            name=CONSUMER,
            module="catalog",
            event_types=(inventory_events.INVENTORY_UPDATED,),
            handler=take,
            supersedes=item,
            wants=changes_available,
        )
    ]


def changes_available(event: Event) -> bool:
    """Whether an `inventory.updated` can tell the copy anything: not one whose change left
    available as it was (a sale moves units from reserved to sold; a new threshold alone). The
    event before it, of the same row, carried the same figure; every change is published under
    the row's lock, so no event falls between the two, and skipping this one leaves the copy
    where handling it would have left it (an event older than that one loses either way).
    Events without `availableChange` (published before it existed) are handled."""
    return event.payload.get("availableChange") != 0
