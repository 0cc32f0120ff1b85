"""What other modules may ask of the catalog (search: the categories and every published
product, to build its index; carts and orders: products as they are now, with current prices)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from tienda.catalog.service import CatalogService
from tienda.catalog.wiring import catalog_service
from tienda.platform.db import Database
from tienda.platform.runtime import Platform


@dataclass(frozen=True)
class CategoryInfo:
    category_id: str
    name: str
    slug: str
    parent_id: str | None


@dataclass(frozen=True)
class VariantInfo:
    variant_id: str
    sku: str | None
    attributes: dict[str, str]
    price: Decimal


@dataclass(frozen=True)
class ProductInfo:
    """A product as it is now, as a buyer's cart or order needs it."""

    product_id: str
    name: str
    sku: str | None
    price: Decimal
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
            async with self.db.reader() as uow:
                reads, after = await self.service.published_products(uow, after=after, limit=batch_size)
            if not reads:
                return
            yield [r.model_dump(mode="json", by_alias=True) for r in reads]

    async def products(self, product_ids: list[str]) -> dict[str, ProductInfo]:
        reads = await self.service.current_products(self.db, product_ids=product_ids)
        return {
            r.product_id: ProductInfo(
                product_id=r.product_id,
                name=r.name,
                sku=r.sku,
                price=r.price,
                currency=r.currency,
                category_id=r.category_id,
                image=r.images[0] if r.images else None,
                variants={
                    v.variant_id: VariantInfo(
                        variant_id=v.variant_id, sku=v.sku, attributes=v.attributes, price=v.price
                    )
                    for v in r.variants
                },
                published=r.is_active and r.deleted_at is None,
            )
            for r in reads
        }


def in_process_client(platform: Platform) -> InProcessCatalogClient:
    """The catalog of this process (resolved on each call, so a process that builds the
    client before, or without, the catalog module still starts)."""
    return InProcessCatalogClient(platform)
