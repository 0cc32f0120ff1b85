"""Search consumes the catalog's product events to keep its index in step."""

from __future__ import annotations

from tienda.catalog import events as catalog_events
from tienda.platform.db import UnitOfWork
from tienda.platform.events import Consumer, Event
from tienda.search.service import SearchService

PRODUCT_EVENTS = (
    catalog_events.PRODUCT_CREATED,
    catalog_events.PRODUCT_UPDATED,
    catalog_events.PRODUCT_DELETED,
    catalog_events.PRODUCT_PUBLISHED,
    catalog_events.PRODUCT_UNPUBLISHED,
    catalog_events.PRODUCT_AVAILABILITY_CHANGED,
)


def consumers(service: SearchService) -> list[Consumer]:
    async def index_product(event: Event, _uow: UnitOfWork) -> None:
        await service.apply_event(event)

    return [Consumer(name="search.index_products", module="search", event_types=PRODUCT_EVENTS, handler=index_product)]
