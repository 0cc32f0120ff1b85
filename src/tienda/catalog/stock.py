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
from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError

from tienda.catalog import events, repository
from tienda.catalog.repository import StockCell, StockHead, StockRows
from tienda.catalog.schemas import ProductRead
from tienda.catalog.service import TOMBSTONE, CatalogService, buyable, product_cache_key
from tienda.inventory import events as inventory_events
from tienda.platform.db import Database, UnitOfWork
from tienda.platform.events import Consumer, Event, processed_params
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
        Only the figures are read (`repository.stock_rows`), not the product whole: a figure the
        copy holds already only moves the copy's time on, and a new one refreshes the cached
        detail from the cached detail itself when that is of the product's current version."""
        rows = await repository.stock_rows(uow.session, figure.product_id)
        if rows is None:
            return False
        holder = rows.own if figure.variant_id is None else rows.variants.get(figure.variant_id)
        if holder is None:
            return False
        if holder.at is not None and figure.at < holder.at:
            return False
        # Even unchanged, the copy takes the time: an older event must not win later.
        await repository.set_stock_copy(
            uow.session, rows.pk, figure.variant_id, available=figure.available, at=figure.at
        )
        changed = holder.available != figure.available
        if not changed or not rows.public:
            return changed
        could_buy = _available(rows) > 0
        cell = StockCell(figure.available, figure.at)
        if figure.variant_id is None:
            rows = rows._replace(own=cell)
        else:
            rows = rows._replace(variants=rows.variants | {figure.variant_id: cell})
        read = await self._read(uow, figure.product_id, rows)
        body = read.model_dump_json(by_alias=True).encode()
        uow.after_commit(lambda: self._refresh_cache(figure.product_id, body))
        if (read.stock > 0) != could_buy:
            # Never older than the product's last change, whatever the clocks of two hosts say.
            at = max(self.catalog.clock.now(), rows.updated_at)
            payload = {"productId": figure.product_id, "product": read.model_dump(mode="json", by_alias=True)}
            await uow.publish(events.PRODUCT_AVAILABILITY_CHANGED, payload, at=at)
        return True

    async def _read(self, uow: UnitOfWork, product_id: str, rows: StockRows) -> ProductRead:
        """The public detail with the copy's figures now (`rows`): the cached one with its
        figures replaced, if it is of the product's version (`updatedAt`) and variants, as it
        nearly always is; else the product read whole."""
        try:
            cached = await self.catalog.cache.get(product_cache_key(product_id))
        except Exception as exc:  # the database has it all; the cache only saves reading it
            log.warning("stock_cache_read_failed", product_id=product_id, error=repr(exc))
            cached = None
        if cached is not None and cached != TOMBSTONE:
            figures = {variant_id: cell.available for variant_id, cell in rows.variants.items()}
            read = _refigured(ProductRead.model_validate_json(cached), rows.updated_at, rows.own.available, figures)
            if read is not None:
                return read
        product = await repository.product_as_stored(uow.session, product_id)
        assert product is not None  # locked by `stock_rows` in this transaction
        return await self.catalog._product_read(uow, product)

    async def at_once(self, db: Database, event: Event) -> bool:
        """`apply` of the common figure, in one statement with the event's processed row
        (PostgreSQL; `repository.take_stock_at_once`): an item that had units and still has,
        so whether the product can be bought does not change and nothing is published. Then
        the cached detail, if it is of the product's version, takes the figures the statement
        read under the lock (as `apply` refreshes it); one of another version is dropped (the
        next read renders it). False for anything else (a figure of none, an item the copy
        holds none of or does not know, an older event, a duplicate): nothing was written,
        and `apply` decides in a unit of work."""
        figure = StockFigure.of(event)
        if figure is None or figure.available <= 0:
            return False
        processed = processed_params(CONSUMER, event)
        try:
            head = await repository.take_stock_at_once(
                db, figure.product_id, figure.variant_id, available=figure.available, at=figure.at, processed=processed
            )
        except IntegrityError:  # recorded already: the unit of work tells the duplicate
            return False
        if head is not None and head.public:
            await self._take_into_cache(figure, head)
        return head is not None

    async def _take_into_cache(self, figure: StockFigure, head: StockHead) -> None:
        """The cached detail with `figure` in it, when it is of the product's version `head`."""
        key = product_cache_key(figure.product_id)
        try:
            cached = await self.catalog.cache.get(key)
            if cached is None or cached == TOMBSTONE:
                return  # the next read renders the product with the figure
            read = ProductRead.model_validate_json(cached)
            if figure.variant_id is None and read.variants:
                return  # a product with variants shows theirs, not its own figure
            # Every figure as the database has it (the own one only without variants), so a
            # stale one in the cache does not survive.
            refigured = _refigured(read, head.updated_at, figure.available, head.variants)
            if refigured is None:
                await self.catalog.cache.delete(key)
                return
            body = refigured.model_dump_json(by_alias=True).encode()
            await self.catalog.cache.set(key, body, ttl=self.catalog.cache_ttl)
        except Exception as exc:  # committed already: the entry expires with its TTL
            log.warning("stock_cache_refresh_failed", product_id=figure.product_id, error=repr(exc))

    async def _refresh_cache(self, product_id: str, body: bytes) -> None:
        try:
            await self.catalog.cache.set(product_cache_key(product_id), body, ttl=self.catalog.cache_ttl)
        except Exception as exc:  # committed already: the entry expires with its TTL
            log.warning("stock_cache_refresh_failed", product_id=product_id, error=repr(exc))


def consumers(catalog: CatalogService, db: Database) -> list[Consumer]:
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
            at_once=partial(copy.at_once, db) if db.multi_table_statements else None,
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


def _available(rows: StockRows) -> int:
    return buyable(rows.own.available, [cell.available for cell in rows.variants.values()])


def _refigured(read: ProductRead, updated_at: datetime, own: int, variants: dict[str, int]) -> ProductRead | None:
    """A cached detail with these figures (the product's own, its variants' by id), when it is
    of this version (`updatedAt`, which every product write moves) and these variants; None
    when it is not."""
    if read.updated_at != updated_at or {v.variant_id for v in read.variants} != set(variants):
        return None
    shown = [v.model_copy(update={"stock": variants[v.variant_id]}) for v in read.variants]
    return read.model_copy(update={"variants": shown, "stock": buyable(own, list(variants.values()))})
