"""The catalog module as the composition root sees it."""

from __future__ import annotations

from tienda.catalog import api, internal, stock
from tienda.catalog.models import OUTBOX, Base
from tienda.catalog.service import TOMBSTONE, product_cache_key
from tienda.catalog.wiring import catalog_service
from tienda.platform.modules import ModuleSpec
from tienda.platform.web import CachedQuery, CachedRead

MODULE = ModuleSpec(
    name="catalog",
    metadata=Base.metadata,
    outbox=OUTBOX,
    migrations="tienda.catalog:migrations",
    routers=(api.products, api.categories),
    root_routers=(api.media, internal.router),
    # The public product detail is kept in the cache whole (see CatalogService.public_product).
    cached_reads=(
        CachedRead(
            path="/products/{productId}",
            parameter=r"p_[A-Za-z0-9_-]{1,62}",
            key=product_cache_key,
            servable=lambda body: body != TOMBSTONE,
        ),
    ),
    # Listing pages, by their query string as sent (see CatalogService.cached_listing).
    cached_queries=(
        CachedQuery(path="/products", key=lambda platform, raw: catalog_service(platform).listing_alias(raw)),
    ),
    # Keeps the copy of inventory's available units that products show.
    consumers=lambda platform: stock.consumers(catalog_service(platform), platform.db("catalog")),
)
