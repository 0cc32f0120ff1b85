"""What other modules may ask of the catalog (search: the categories and every published
product, to build its index; carts and orders: products as they are now, with current prices)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import TypeAdapter, with_config

from tienda.catalog.schemas import ProductRead
from tienda.catalog.service import CatalogService
from tienda.catalog.wiring import catalog_service
from tienda.platform.db import Database
from tienda.platform.http import Remote
from tienda.platform.money import WireAmount
from tienda.platform.runtime import Platform
from tienda.platform.schemas import WIRE, Schema


@with_config(WIRE)
@dataclass(frozen=True)
class CategoryInfo:
    category_id: str
    name: str
    slug: str
    parent_id: str | None


@with_config(WIRE)
@dataclass(frozen=True)
class VariantInfo:
    variant_id: str
    sku: str | None
    attributes: dict[str, str]
    price: WireAmount


@with_config(WIRE)
@dataclass(frozen=True)
class ProductInfo:
    """A product as it is now, as a buyer's cart or order needs it."""

    product_id: str
    name: str
    sku: str | None
    price: WireAmount
    currency: str
    category_id: str | None
    image: str | None
    variants: dict[str, VariantInfo]
    published: bool
    """Active and not deleted: the public may see and buy it."""

    def has_line(self, variant_id: str | None) -> bool:
        """Whether a line of this product with this variant (None: no variant) can exist now:
        the variant is one of the product's, or the product has none and none is named."""
        return variant_id in self.variants if variant_id is not None else not self.variants


class CatalogClient(Protocol):
    async def categories(self) -> list[CategoryInfo]:
        """Every category (served from the catalog's cache)."""
        ...

    def published_products(self, *, batch_size: int = 1000) -> AsyncIterator[list[dict[str, Any]]]:
        """Every published, undeleted product, in batches, each as the JSON of its ProductDTO
        (the same shape as the `product` of the catalog's events)."""
        ...

    async def products(self, product_ids: list[str]) -> dict[str, ProductInfo]:
        """These products as they are now, by id; ids of products that no longer exist (or
        never did) are absent."""
        ...


class InProcessCatalogClient:
    """Calls straight into the catalog module, in transactions of its own."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    @property
    def db(self) -> Database:
        return self.platform.db("catalog")

    @property
    def service(self) -> CatalogService:
        return catalog_service(self.platform)

    async def categories(self) -> list[CategoryInfo]:
        return [
            CategoryInfo(category_id=c.category_id, name=c.name, slug=c.slug, parent_id=c.parent_id)
            for c in await self.service.all_categories(self.db)
        ]

    async def published_products(self, *, batch_size: int = 1000) -> AsyncIterator[list[dict[str, Any]]]:
        after = 0
        while True:
            batch, after = await self.published_page(after=after, limit=batch_size)
            if not batch:
                return
            yield batch

    async def published_page(self, *, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """One batch of `published_products` from storage position `after`, and the next position."""
        async with self.db.reader() as uow:
            reads, after = await self.service.published_products(uow, after=after, limit=limit)
        return [r.model_dump(mode="json", by_alias=True) for r in reads], after

    async def products(self, product_ids: list[str]) -> dict[str, ProductInfo]:
        infos = map(product_info, await self.service.current_products(self.db, product_ids=product_ids))
        return {info.product_id: info for info in infos}


@functools.lru_cache(maxsize=4096)
def product_info(body: bytes) -> ProductInfo:
    """What a cart or an order needs of a product, from the JSON of its ProductDTO. Kept per
    body: a product changed is other bytes, so an unchanged one is parsed once per process
    (validating the whole product was a tenth of a cart write's CPU). Callers share what it
    returns and only read it."""
    r = ProductRead.model_validate_json(body)
    return ProductInfo(
        product_id=r.product_id,
        name=r.name,
        sku=r.sku,
        price=r.price,
        currency=r.currency,
        category_id=r.category_id,
        image=r.images[0] if r.images else None,
        variants={
            v.variant_id: VariantInfo(variant_id=v.variant_id, sku=v.sku, attributes=v.attributes, price=v.price)
            for v in r.variants
        },
        published=r.is_active and r.deleted_at is None,
    )


class ProductLookup(Schema):
    product_ids: list[str]


class PublishedPage(Schema):
    items: list[dict[str, Any]]
    next: str | None
    """Where the next page starts (an opaque cursor); None after the last."""


CATEGORIES = TypeAdapter(list[CategoryInfo])
PRODUCTS = TypeAdapter(list[ProductInfo])


class HttpCatalogClient:
    """The catalog service's `/internal/catalog` routes (catalog/internal.py). Every call is a
    read, so every call is retried."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    async def categories(self) -> list[CategoryInfo]:
        response = await self.remote.call("GET", "/internal/catalog/categories", idempotent=True)
        return CATEGORIES.validate_json(response.content)

    async def published_products(self, *, batch_size: int = 1000) -> AsyncIterator[list[dict[str, Any]]]:
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"size": batch_size}
            if cursor is not None:
                params["after"] = cursor
            response = await self.remote.call(
                "GET", "/internal/catalog/published-products", params=params, idempotent=True
            )
            page = PublishedPage.model_validate_json(response.content)
            if page.items:
                yield page.items
            if page.next is None or not page.items:
                return
            cursor = page.next

    async def products(self, product_ids: list[str]) -> dict[str, ProductInfo]:
        if not product_ids:
            return {}
        body = ProductLookup(product_ids=product_ids).model_dump_json(by_alias=True).encode()
        response = await self.remote.call("POST", "/internal/catalog/products/lookup", body=body, idempotent=True)
        return {p.product_id: p for p in PRODUCTS.validate_json(response.content)}


def catalog_client(platform: Platform) -> CatalogClient:
    """The catalog as this process reaches it: in process (resolved on each call, so a process
    that builds the client before the catalog module's service still starts), or over HTTP."""
    return platform.client("catalog", in_process=InProcessCatalogClient, http=HttpCatalogClient)
