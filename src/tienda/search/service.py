"""Use cases of search: keep the index in step with the catalog's events, rebuild it, answer
searches and suggestions (cached per index version)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from tienda.catalog.client import CatalogClient, CategoryInfo
from tienda.catalog.events import PRODUCT_DELETED
from tienda.platform.cache import Cache, RenderCache, query_key, raw_query_key
from tienda.platform.errors import ErrorDetail
from tienda.platform.events import Event
from tienda.search.domain import (
    PRICE_BOUNDS,
    Change,
    IndexedProduct,
    SearchRequest,
    SearchResult,
    dto_version,
    in_stock,
    indexed_product,
    is_public,
    subtree,
    version_of,
)
from tienda.search.errors import UnknownCategory
from tienda.search.index import SearchIndex
from tienda.search.schemas import (
    AttributeFacet,
    AttributeValueFacet,
    BrandFacet,
    CategoryFacet,
    PriceRangeFacet,
    SearchFacets,
    SearchHit,
)

T = TypeVar("T")

RESULTS_NAMESPACE = "search:results"


class ReindexAborted(Exception):
    pass


@dataclass
class SearchService:
    index: SearchIndex
    catalog: CatalogClient
    cache: Cache
    cache_ttl: float = 300.0
    results: RenderCache = field(init=False)

    def __post_init__(self) -> None:
        self.results = RenderCache(self.cache, ttl=self.cache_ttl)

    # -- keeping the index ----------------------------------------------------------------

    async def apply_event(self, event: Event) -> None:
        """A catalog event: the product as it now is (its availability included), or gone from
        search."""
        product_id = str(event.payload["productId"])
        version = version_of(event.occurred_at)
        product = event.payload.get("product")
        if event.type == PRODUCT_DELETED or not isinstance(product, dict) or not is_public(product):
            change = Change(product_id, version)
        else:
            change = Change(product_id, version, self._indexed(product, version, await self.catalog.categories()))
        await self._locked(lambda: self.index.apply([change]))

    async def ensure_index(self) -> bool:
        """An index of the current schema exists afterwards; True when it had to be built."""
        if self.index.version() != "empty" and not self.index.outdated():
            return False
        await self.reindex()
        return True

    async def reindex(self, *, batch_size: int = 1000) -> int:
        """Build a new generation from the catalog and switch to it; searches go on meanwhile.

        The write lock is taken before the catalog is read: a change the catalog committed
        before the read is in the snapshot, and its event, if not yet applied, waits for the
        lock and is applied to the new generation after the switch (older versions skipped)."""
        batches: queue.Queue[list[IndexedProduct] | None] = queue.Queue(maxsize=4)
        locked, aborted = threading.Event(), threading.Event()

        def build() -> int:
            lock = self.index.lock().acquire()
            try:
                locked.set()
                with self.index.building() as builder:
                    while (batch := batches.get()) is not None:
                        builder.add(batch)
                    if aborted.is_set():
                        raise ReindexAborted()
                return builder.count
            finally:
                lock.release()

        builder = asyncio.ensure_future(asyncio.to_thread(build))
        try:
            while not locked.is_set():
                if builder.done():
                    return await builder  # failed before it could start
                await asyncio.sleep(0.005)
            categories = await self.catalog.categories()
            async for products in self.catalog.published_products(batch_size=batch_size):
                batch = [self._indexed(p, dto_version(p), categories) for p in products]
                await asyncio.to_thread(batches.put, batch)
        except BaseException:
            aborted.set()
            batches.put(None)
            with contextlib.suppress(Exception):  # the builder stops on `aborted`; what failed is ours
                await builder
            raise
        batches.put(None)
        return await builder

    async def _locked(self, work: Callable[[], T]) -> T:
        def run() -> T:
            lock = self.index.lock().acquire()
            try:
                return work()
            finally:
                lock.release()

        # Lock, work and unlock all happen in the thread: a cancelled caller cannot leave the
        # lock held or release it while the work still runs.
        return await asyncio.to_thread(run)

    @staticmethod
    def _indexed(product: dict[str, Any], version: int, categories: list[CategoryInfo]) -> IndexedProduct:
        images = product.get("images") or []
        hit = SearchHit(
            product_id=product["productId"],
            name=product["name"],
            price=Decimal(str(product["price"])),
            currency=product.get("currency") or "INR",
            brand=product.get("brand"),
            category_id=product.get("categoryId"),
            image=images[0] if images else None,
            created_at=product["createdAt"],
            in_stock=in_stock(product),
        )
        return indexed_product(
            product, version=version, categories=categories, hit=hit.model_dump_json(by_alias=True).encode()
        )

    # -- answering ------------------------------------------------------------------------

    async def search(
        self,
        *,
        text: str,
        category: str | None,
        brands: list[str],
        min_price: Decimal | None,
        max_price: Decimal | None,
        attributes: dict[str, set[str]],
        sort: str,
        page: int,
        size: int,
        available_only: bool = False,
        raw_query: bytes | None = None,
    ) -> bytes:
        """A page of hits with facets as JSON, from the cache while the index is unchanged;
        kept under the raw query string too when given, where `results_alias` finds it."""
        query = {
            "q": text,
            "category": category,
            "brands": sorted(brands),
            "min": min_price,
            "max": max_price,
            "attributes": sorted((k, sorted(v)) for k, v in attributes.items()),
            "sort": sort,
            "inStock": available_only,
            "page": page,
            "size": size,
        }

        async def render() -> bytes:
            categories = await self.catalog.categories()
            category_ids = None
            if category:
                category_ids = subtree(categories, category)
                if category_ids is None:
                    raise UnknownCategory(details=[ErrorDetail(field="query.category", message=category[:255])])
            request = SearchRequest(
                text=text,
                category_ids=category_ids,
                brands=frozenset(brands),
                min_price=min_price,
                max_price=max_price,
                attributes=tuple((k, frozenset(v)) for k, v in sorted(attributes.items())),
                sort=sort,
                in_stock=available_only,
                offset=(page - 1) * size,
                limit=size,
            )
            result = await asyncio.to_thread(self.index.search, request)
            facets = self._facets(result, categories).model_dump_json(by_alias=True).encode()
            return b"".join(
                [
                    b'{"items":[',
                    b",".join(result.hits),
                    b'],"page":%d,"size":%d,"total":%d,"query":' % (page, size, result.total),
                    json.dumps(text).encode(),
                    b',"facets":',
                    facets,
                    b"}",
                ]
            )

        version = self.index.version().encode()
        alias = None if raw_query is None else raw_query_key(RESULTS_NAMESPACE, version, raw_query)
        return await self.results.get(query_key(RESULTS_NAMESPACE, version, query), render, alias=alias)

    async def results_alias(self, raw_query: bytes) -> str:
        """Where the page of results asked for by this raw query string is kept now."""
        return raw_query_key(RESULTS_NAMESPACE, self.index.version().encode(), raw_query)

    async def suggest(self, *, text: str, size: int) -> bytes:
        async def render() -> bytes:
            completions, products = await asyncio.to_thread(self.index.suggest, text, limit=size)
            return b"".join(
                [
                    b'{"query":',
                    json.dumps(text).encode(),
                    b',"completions":',
                    json.dumps(completions).encode(),
                    b',"products":[',
                    b",".join(products),
                    b"]}",
                ]
            )

        key = query_key("search:suggest", self.index.version().encode(), {"q": text, "size": size})
        return await self.results.get(key, render)

    @staticmethod
    def _facets(result: SearchResult, categories: list[CategoryInfo]) -> SearchFacets:
        names = {c.category_id: c.name for c in categories}
        bounds: list[Decimal | None] = [*PRICE_BOUNDS[1:], None]
        return SearchFacets(
            brands=[BrandFacet(value=b, count=n) for b, n in result.brands],
            categories=[
                CategoryFacet(category_id=c, name=names[c], count=n) for c, n in result.categories if c in names
            ],
            price_ranges=[
                PriceRangeFacet(min=low, max=high, count=n)
                for low, high, n in zip(
                    PRICE_BOUNDS, bounds, result.price_ranges or [0] * len(PRICE_BOUNDS), strict=True
                )
            ],
            attributes=[
                AttributeFacet(
                    name=name,
                    values=[
                        AttributeValueFacet(value=v, count=n) for v, n in sorted(values, key=lambda vn: (-vn[1], vn[0]))
                    ],
                )
                for name, values in sorted(result.attributes.items())
            ],
        )
