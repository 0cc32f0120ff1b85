"""The search module as the composition root sees it."""

from __future__ import annotations

from tienda.platform.modules import ModuleSpec
from tienda.platform.web import CachedQuery
from tienda.search import api, events
from tienda.search.models import OUTBOX, Base
from tienda.search.wiring import search_service

MODULE = ModuleSpec(
    name="search",
    metadata=Base.metadata,
    outbox=OUTBOX,
    migrations="tienda.search:migrations",
    routers=(api.router,),
    # Pages of results, by their query string as sent (see SearchService.search).
    cached_queries=(
        CachedQuery(path="/products/search", key=lambda platform, raw: search_service(platform).results_alias(raw)),
    ),
    consumers=lambda platform: events.consumers(search_service(platform)),
)
