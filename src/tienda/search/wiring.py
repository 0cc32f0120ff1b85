"""Builds the search service from the platform, once per process (routes, consumer, CLI)."""

from __future__ import annotations

from tienda.catalog.client import catalog_client
from tienda.platform.runtime import Platform
from tienda.search.index import SearchIndex
from tienda.search.service import SearchService


def search_service(platform: Platform) -> SearchService:
    def build(p: Platform) -> SearchService:
        return SearchService(
            index=SearchIndex(p.settings.search_index_path),
            catalog=catalog_client(p),
            cache=p.cache,
            cache_ttl=p.settings.search_cache_ttl_seconds,
        )

    return platform.service("search", build)
