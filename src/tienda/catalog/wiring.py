"""Builds the catalog service from the platform, once per process (routes, client, CLI)."""

from __future__ import annotations

from tienda.catalog.service import CatalogService
from tienda.platform.runtime import Platform


def catalog_service(platform: Platform) -> CatalogService:
    def build(p: Platform) -> CatalogService:
        return CatalogService(
            clock=p.clock,
            cache=p.cache,
            cache_ttl=p.settings.product_cache_ttl_seconds,
            listing_ttl=p.settings.listing_cache_ttl_seconds,
        )

    return platform.service("catalog", build)
