"""Builds the catalog's service and media store from the platform, once per process."""

from __future__ import annotations

from tienda.catalog.media import MediaStore
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


def media_store(platform: Platform) -> MediaStore:
    def build(p: Platform) -> MediaStore:
        return MediaStore(p.settings.media_dir, max_image_bytes=p.settings.max_image_bytes)

    return platform.service("catalog.media", build)
