"""Use cases of the catalog. Each takes a unit of work and keyword arguments, flushes, and
leaves the commit to its caller; every change publishes its event in the same transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter
from slugify import slugify
from sqlalchemy.exc import IntegrityError

from tienda.catalog import events, repository
from tienda.catalog.errors import (
    CategoryCycle,
    CategoryInUse,
    CategoryNotFound,
    ImageLimitReached,
    ProductDeleted,
    ProductIdTaken,
    ProductNotFound,
    SkuTaken,
    SlugTaken,
    UnknownCategory,
    UnknownVariant,
)
from tienda.catalog.models import Category, Image, Product, Variant
from tienda.catalog.schemas import (
    BrandFacet,
    CategoryFacet,
    CategoryRead,
    Facets,
    ImageIn,
    ImageRead,
    PriceRangeFacet,
    ProductRead,
    ProductSummary,
    VariantIn,
    VariantRead,
)
from tienda.platform.cache import Cache, Generation, RenderCache, query_key, raw_query_key
from tienda.platform.clock import Clock
from tienda.platform.db import Database, UnitOfWork
from tienda.platform.errors import BadRequest, ErrorDetail
from tienda.platform.ids import new_public_id

MAX_IMAGES = 20
PRICE_RANGES: list[tuple[Decimal, Decimal | None]] = [
    (Decimal(0), Decimal(500)),
    (Decimal(500), Decimal(1000)),
    (Decimal(1000), Decimal(2500)),
    (Decimal(2500), Decimal(5000)),
    (Decimal(5000), None),
]


LISTING_NAMESPACE = "catalog:listing"
LISTING_NAMESPACE = "catalog:listing"
LISTING_GENERATION = "catalog:listing-generation"
CATEGORY_GENERATION = "catalog:category-generation"
_CATEGORY_LIST = TypeAdapter(list[CategoryRead])

TOMBSTONE = b"-"
"""Cached in place of a product the public may not see, so a reader that loaded the old row
before a write committed cannot put it back (readers only add, writers overwrite)."""


@dataclass
class CatalogService:
    clock: Clock
    cache: Cache
    cache_ttl: float = 300.0
    listing_ttl: float = 60.0
    listings: RenderCache = field(init=False)
    category_lists: RenderCache = field(init=False)
    _categories_seen: tuple[str, list[CategoryRead]] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.listing_generation = Generation(self.cache, LISTING_GENERATION)
        self.category_generation = Generation(self.cache, CATEGORY_GENERATION)
        self.listings = RenderCache(self.cache, ttl=self.listing_ttl)
        self.category_lists = RenderCache(self.cache, ttl=self.cache_ttl)

    # -- categories ---------------------------------------------------------------------

    async def create_category(
        self, uow: UnitOfWork, *, name: str, slug: str | None, parent_id: str | None
    ) -> CategoryRead:
        parent = await self._parent(uow, parent_id)
        slug = slug or slugify(name) or new_public_id("c")
        if await repository.category_by_slug(uow.session, slug) is not None:
            raise SlugTaken()
        category = Category(
            category_id=new_public_id("cat"),
            name=name,
            slug=slug,
            parent_id=parent.id if parent else None,
            created_at=self.clock.now(),
        )
        uow.session.add(category)
        await self._flush(uow, SlugTaken)
        return self._category_read(category, parent.category_id if parent else None)

    async def all_categories(self, db: Database) -> list[CategoryRead]:
        """Every category, by name, from the cache; a category write starts a new generation."""

        async def render() -> bytes:
            async with db.reader() as uow:
                rows = await repository.all_categories(uow.session)
            parents = {r.id: r.category_id for r in rows}
            reads = [self._category_read(r, parents.get(r.parent_id) if r.parent_id else None) for r in rows]
            return _CATEGORY_LIST.dump_json(reads, by_alias=True)

        key = query_key("catalog:categories", await self.category_generation.current(), {})
        seen = self._categories_seen
        if seen is None or seen[0] != key:
            # Kept here too under the same key: a generation's list never changes, and every
            # checkout asks (the cached body's read and parse were most of the cost).
            seen = self._categories_seen = (
                key,
                _CATEGORY_LIST.validate_json(await self.category_lists.get(key, render)),
            )
        return list(seen[1])

    async def categories_changed(self) -> None:
        """After a category write committed: category lists and listings (facets name
        categories, filters include sub-categories) are read afresh."""
        await self.category_generation.renew()
        await self.listing_generation.renew()

    async def category(self, uow: UnitOfWork, *, category_id: str) -> CategoryRead:
        category = await self._category(uow, category_id)
        parent = await repository.category_by_pk(uow.session, category.parent_id) if category.parent_id else None
        return self._category_read(category, parent.category_id if parent else None)

    async def update_category(self, uow: UnitOfWork, *, category_id: str, changes: dict[str, Any]) -> CategoryRead:
        category = await self._category(uow, category_id)
        if "parent_id" in changes:
            parent = await self._parent(uow, changes["parent_id"])
            if parent is not None:
                await self._refuse_cycle(uow, moving=category, under=parent)
            category.parent_id = parent.id if parent else None
        if "slug" in changes and changes["slug"] != category.slug:
            if await repository.category_by_slug(uow.session, changes["slug"]) is not None:
                raise SlugTaken()
            category.slug = changes["slug"]
        if "name" in changes:
            category.name = changes["name"]
        await self._flush(uow, SlugTaken)
        return await self.category(uow, category_id=category_id)

    async def delete_category(self, uow: UnitOfWork, *, category_id: str) -> None:
        category = await self._category(uow, category_id)
        if await repository.category_in_use(uow.session, category.id):
            raise CategoryInUse()
        await uow.session.delete(category)
        await uow.session.flush()

    async def _category(self, uow: UnitOfWork, category_id: str) -> Category:
        category = await repository.category(uow.session, category_id)
        if category is None:
            raise CategoryNotFound()
        return category

    async def _parent(self, uow: UnitOfWork, category_id: str | None) -> Category | None:
        if category_id is None:
            return None
        category = await repository.category(uow.session, category_id)
        if category is None:
            raise UnknownCategory(details=[ErrorDetail(field="body.categoryId", message=category_id)])
        return category

    async def _refuse_cycle(self, uow: UnitOfWork, *, moving: Category, under: Category) -> None:
        """Walk up from the new parent: meeting the moving category means a cycle."""
        node: Category | None = under
        seen: set[int] = set()
        while node is not None and node.id not in seen:
            if node.id == moving.id:
                raise CategoryCycle()
            seen.add(node.id)
            node = await repository.category_by_pk(uow.session, node.parent_id) if node.parent_id else None

    @staticmethod
    def _category_read(category: Category, parent_id: str | None) -> CategoryRead:
        return CategoryRead(
            category_id=category.category_id,
            name=category.name,
            slug=category.slug,
            parent_id=parent_id,
            created_at=category.created_at,
        )

    # -- listing ------------------------------------------------------------------------

    async def listing(
        self,
        uow: UnitOfWork,
        *,
        category: str | None,
        brand: str | None,
        min_price: Decimal | None,
        max_price: Decimal | None,
        sort: str,
        offset: int,
        limit: int,
    ) -> tuple[list[ProductSummary], int, Facets]:
        """Published products; a category filter (id or slug) includes its sub-categories."""
        if min_price is not None and max_price is not None and min_price > max_price:
            raise BadRequest("minPrice is above maxPrice", code="VALIDATION_FAILED")
        filters: dict[str, Any] = {
            "category_pks": await self._subtree(uow, category) if category else None,
            "brand": brand,
            "min_price": min_price,
            "max_price": max_price,
        }
        rows, total = await repository.listing(uow.session, filters=filters, sort=sort, offset=offset, limit=limit)
        public = await repository.public_ids_of_categories(uow.session, {r.category_id for r in rows if r.category_id})
        items = [
            ProductSummary(
                product_id=r.product_id,
                name=r.name,
                price=r.price,
                currency=r.price_currency,
                brand=r.brand,
                category_id=public.get(r.category_id) if r.category_id else None,
                image=min(r.images, key=lambda i: (i.sort_order, i.id)).url if r.images else None,
                created_at=r.created_at,
            )
            for r in rows
        ]
        counts = await repository.price_range_counts(uow.session, filters=filters, bounds=PRICE_RANGES)
        facets = Facets(
            brands=[
                BrandFacet(value=b, count=n) for b, n in await repository.brand_counts(uow.session, filters=filters)
            ],
            categories=[
                CategoryFacet(category_id=c, name=name, count=n)
                for c, name, n in await repository.category_counts(uow.session, filters=filters)
            ],
            price_ranges=[
                PriceRangeFacet(min=low, max=high, count=n) for (low, high), n in zip(PRICE_RANGES, counts, strict=True)
            ],
        )
        return items, total, facets

    async def _subtree(self, uow: UnitOfWork, category: str) -> set[int]:
        tree = await repository.category_tree(uow.session)
        root = next((pk for pk, _, public_id, slug in tree if category in (public_id, slug)), None)
        if root is None:
            raise UnknownCategory(details=[ErrorDetail(field="query.category", message=category)])
        children: dict[int | None, list[int]] = {}
        for pk, parent, _, _ in tree:
            children.setdefault(parent, []).append(pk)
        found, frontier = {root}, [root]
        while frontier:
            frontier = [child for pk in frontier for child in children.get(pk, []) if child not in found]
            found.update(frontier)
        return found

    # -- products -----------------------------------------------------------------------

    async def create_product(
        self, uow: UnitOfWork, *, fields: dict[str, Any], variants: list[VariantIn], images: list[ImageIn]
    ) -> ProductRead:
        product_id = fields.pop("product_id", None) or new_public_id("p")
        if await repository.product_id_exists(uow.session, product_id):
            raise ProductIdTaken()
        category = await self._parent(uow, fields.pop("category_id", None))
        await self._refuse_taken_skus(uow, [fields.get("sku"), *(v.sku for v in variants)], product_pk=None)
        now = self.clock.now()
        product = Product(
            product_id=product_id,
            category_id=category.id if category else None,
            price_currency=fields.pop("currency"),
            is_active=False,
            created_at=now,
            updated_at=now,
            variants=[self._new_variant(v, now) for v in variants],
            images=self._images(images),
            **fields,
        )
        uow.session.add(product)
        await self._flush(uow, SkuTaken)
        read = await self._product_read(uow, product)
        await uow.publish(
            events.PRODUCT_CREATED,
            {"productId": product_id, "product": read.model_dump(mode="json", by_alias=True)},
            at=now,
        )
        return read

    async def public_product(self, db: Database, *, product_id: str) -> bytes:
        """The public view of a product as JSON, from the cache when it is there."""
        key = product_cache_key(product_id)
        cached = await self.cache.get(key)
        if cached is not None and cached != TOMBSTONE:
            return cached
        async with db.reader() as uow:
            read = await self.product(uow, product_id=product_id, admin=False)
        body = read.model_dump_json(by_alias=True).encode()
        if cached is None:
            await self.cache.add(key, body, ttl=self.cache_ttl)
        return body

    async def current_products(self, db: Database, *, product_ids: list[str]) -> list[bytes]:
        """These products as they are now, each once, those that exist, as the JSON of their
        ProductDTO: published ones from the product cache (kept current on every write), the
        rest (unpublished, deleted, not cached yet) from the database; a published one read
        there is cached as `public_product` would. The same product unchanged is the same bytes,
        which lets a caller keep what it made of them (`catalog.client`)."""
        wanted = list(dict.fromkeys(product_ids))
        if not wanted:
            return []
        cached = dict(zip(wanted, await self.cache.get_many(*map(product_cache_key, wanted)), strict=True))
        found = [body for body in cached.values() if body and body != TOMBSTONE]
        missing = [p for p, body in cached.items() if body is None or body == TOMBSTONE]
        if not missing:
            return found
        async with db.reader() as uow:
            rows = await repository.products(uow.session, missing)
            public = await repository.public_ids_of_categories(
                uow.session, {r.category_id for r in rows if r.category_id}
            )
        for row in rows:
            read = self._read(row, public.get(row.category_id) if row.category_id else None)
            body = read.model_dump_json(by_alias=True).encode()
            if cached[read.product_id] is None and read.is_active and read.deleted_at is None:
                await self.cache.add(product_cache_key(read.product_id), body, ttl=self.cache_ttl)
            found.append(body)
        return found

    async def publish_to_cache(self, product_id: str, read: ProductRead | None) -> None:
        """After a write committed: the new public view, or a tombstone if the public may not
        see it; and a new listing generation, so no cached page shows the old product."""
        visible = read is not None and read.is_active and read.deleted_at is None
        body = read.model_dump_json(by_alias=True).encode() if visible and read else TOMBSTONE
        await self.cache.set(product_cache_key(product_id), body, ttl=self.cache_ttl)
        await self.listing_generation.renew()

    async def cached_listing(
        self, *, query: dict[str, Any], raw_query: bytes, render: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """A listing page from the cache, keyed by the query and the catalog's generation: a
        write starts a new generation, so pages cached before it are never read again. Kept
        under the raw query string too, where `listing_alias` finds it before routing."""
        generation = await self.listing_generation.current()
        key = query_key(LISTING_NAMESPACE, generation, query)
        return await self.listings.get(key, render, alias=raw_query_key(LISTING_NAMESPACE, generation, raw_query))

    async def listing_alias(self, raw_query: bytes) -> str:
        """Where the listing page asked for by this raw query string is kept now."""
        return raw_query_key(LISTING_NAMESPACE, await self.listing_generation.current(), raw_query)

    async def product(self, uow: UnitOfWork, *, product_id: str, admin: bool) -> ProductRead:
        product = await repository.product(uow.session, product_id)
        if product is None or (not admin and (not product.is_active or product.deleted_at is not None)):
            raise ProductNotFound()
        return await self._product_read(uow, product)

    async def update_product(
        self,
        uow: UnitOfWork,
        *,
        product_id: str,
        changes: dict[str, Any],
        variants: list[VariantIn] | None,
        images: list[ImageIn] | None,
    ) -> ProductRead:
        product = await self._product(uow, product_id)
        now = self.clock.now()
        if "category_id" in changes:
            category = await self._parent(uow, changes.pop("category_id"))
            product.category_id = category.id if category else None
        if "currency" in changes:
            product.price_currency = changes.pop("currency")
        await self._refuse_taken_skus(uow, self._skus_after(product, changes, variants), product_pk=product.id)
        for name, value in changes.items():
            setattr(product, name, value)
        if variants is not None:
            await self._apply_variants(uow, product, variants, now)
        if images is not None:
            product.images = self._images(images)
        product.updated_at = now
        await self._flush(uow, SkuTaken)
        return await self._changed(uow, product, events.PRODUCT_UPDATED)

    async def delete_product(self, uow: UnitOfWork, *, product_id: str, hard: bool) -> None:
        product = await self._product(uow, product_id)
        now = self.clock.now()
        if hard:
            await uow.session.delete(product)
        elif product.deleted_at is None:
            product.deleted_at = now
            product.updated_at = now
        await uow.session.flush()
        await uow.publish(events.PRODUCT_DELETED, {"productId": product_id, "hard": hard}, at=now)

    async def set_published(self, uow: UnitOfWork, *, product_id: str, published: bool) -> ProductRead:
        product = await self._product(uow, product_id)
        if published and product.deleted_at is not None:
            raise ProductDeleted()
        product.is_active = published
        product.updated_at = self.clock.now()
        await uow.session.flush()
        return await self._changed(uow, product, events.PRODUCT_PUBLISHED if published else events.PRODUCT_UNPUBLISHED)

    async def add_image(self, uow: UnitOfWork, *, product_id: str, image: ImageIn) -> tuple[ImageRead, ProductRead]:
        product = await self._product(uow, product_id)
        if len(product.images) >= MAX_IMAGES:
            raise ImageLimitReached()
        ordered = list(product.images)
        position = len(ordered) if image.position is None else min(image.position, len(ordered))
        added = Image(url=image.url, alt_text=image.alt_text)
        ordered.insert(position, added)
        for index, each in enumerate(ordered):
            each.sort_order = index
            each.is_primary = index == 0
        product.images = ordered
        product.updated_at = self.clock.now()
        await uow.session.flush()
        read = await self._changed(uow, product, events.PRODUCT_UPDATED)
        return ImageRead(url=added.url, alt_text=added.alt_text, position=position, is_primary=position == 0), read

    async def _product(self, uow: UnitOfWork, product_id: str) -> Product:
        product = await repository.product(uow.session, product_id, for_update=True)
        if product is None:
            raise ProductNotFound()
        return product

    async def _changed(self, uow: UnitOfWork, product: Product, event_type: str) -> ProductRead:
        read = await self._product_read(uow, product)
        payload = {"productId": product.product_id, "product": read.model_dump(mode="json", by_alias=True)}
        await uow.publish(event_type, payload, at=product.updated_at)
        return read

    @staticmethod
    def _skus_after(product: Product, changes: dict[str, Any], variants: list[VariantIn] | None) -> list[str | None]:
        """Every SKU the product and its variants will carry once the update is applied."""
        skus: list[str | None] = [changes.get("sku", product.sku)]
        if variants is None:
            return skus + [v.sku for v in product.variants]
        current = {v.variant_id: v.sku for v in product.variants}
        for wanted in variants:
            if wanted.variant_id is not None and "sku" not in wanted.model_fields_set:
                skus.append(current.get(wanted.variant_id))
            else:
                skus.append(wanted.sku)
        return skus

    async def _refuse_taken_skus(self, uow: UnitOfWork, skus: list[str | None], *, product_pk: int | None) -> None:
        wanted = [s for s in skus if s is not None]
        repeated = {s for s, n in Counter(wanted).items() if n > 1}
        taken = repeated | await repository.skus_in_use(uow.session, set(wanted), except_product_pk=product_pk)
        if taken:
            raise SkuTaken(details=[ErrorDetail(field="sku", message=s) for s in sorted(taken)])

    async def _apply_variants(self, uow: UnitOfWork, product: Product, wanted: list[VariantIn], now: Any) -> None:
        by_id = {v.variant_id: v for v in product.variants}
        unknown = [w.variant_id for w in wanted if w.variant_id is not None and w.variant_id not in by_id]
        if unknown:
            raise UnknownVariant(
                details=[ErrorDetail(field="body.variants.variantId", message=v) for v in unknown if v]
            )
        # Removed variants go first, so a new variant may take over a removed one's SKU.
        keep_ids = {w.variant_id for w in wanted if w.variant_id is not None}
        product.variants = [v for v in product.variants if v.variant_id in keep_ids]
        await uow.session.flush()
        kept: list[Variant] = []
        for w in wanted:
            if w.variant_id is None:
                kept.append(self._new_variant(w, now))
                continue
            variant = by_id[w.variant_id]
            sent = w.model_fields_set
            if "sku" in sent:
                variant.sku = w.sku
            if "attributes" in sent:
                variant.attributes = dict(w.attributes)
            if "price" in sent:
                variant.price = w.price
            kept.append(variant)
        product.variants = kept

    @staticmethod
    def _new_variant(v: VariantIn, now: Any) -> Variant:
        return Variant(
            variant_id=new_public_id("v"), sku=v.sku, attributes=dict(v.attributes), price=v.price, created_at=now
        )

    @staticmethod
    def _images(images: list[ImageIn]) -> list[Image]:
        """In `position` order where given (a stable sort keeps the rest in list order);
        the first is the primary image."""
        ordered = sorted(
            enumerate(images), key=lambda pair: pair[1].position if pair[1].position is not None else pair[0]
        )
        return [
            Image(url=image.url, alt_text=image.alt_text, sort_order=index, is_primary=index == 0)
            for index, (_, image) in enumerate(ordered)
        ]

    async def _product_read(self, uow: UnitOfWork, product: Product) -> ProductRead:
        category = await repository.category_by_pk(uow.session, product.category_id) if product.category_id else None
        return self._read(product, category.category_id if category else None)

    async def published_products(self, uow: UnitOfWork, *, after: int, limit: int) -> tuple[list[ProductRead], int]:
        """A batch of published products in storage order (for indexing), and where the next
        batch starts."""
        rows = await repository.published_products_after(uow.session, after, limit)
        public = await repository.public_ids_of_categories(uow.session, {r.category_id for r in rows if r.category_id})
        reads = [self._read(r, public.get(r.category_id) if r.category_id else None) for r in rows]
        return reads, rows[-1].id if rows else after

    @staticmethod
    def _read(product: Product, category_id: str | None) -> ProductRead:
        return ProductRead(
            product_id=product.product_id,
            name=product.name,
            sku=product.sku,
            description=product.description,
            price=product.price,
            currency=product.price_currency,
            brand=product.brand,
            category_id=category_id,
            weight_kg=product.weight_kg,
            dimensions=product.dimensions,
            variants=[
                VariantRead(
                    variant_id=v.variant_id,
                    sku=v.sku,
                    attributes=v.attributes,
                    price=v.price if v.price is not None else product.price,
                    stock=v.stock_available,
                )
                for v in product.variants
            ],
            stock=available(product),
            images=[i.url for i in sorted(product.images, key=lambda i: (i.sort_order, i.id or 0))],
            is_active=product.is_active,
            deleted_at=product.deleted_at,
            created_at=product.created_at,
            updated_at=product.updated_at,
        )

    @staticmethod
    async def _flush(uow: UnitOfWork, conflict: type[Exception]) -> None:
        try:
            await uow.session.flush()
        except IntegrityError as exc:  # a concurrent writer took the slug, id or SKU first
            message = str(exc.orig)
            if "uq_products_product_id" in message or "products.product_id" in message:
                raise ProductIdTaken() from exc
            raise conflict() from exc


def available(product: Product) -> int:
    return buyable(product.stock_available, [v.stock_available for v in product.variants])


def buyable(own: int, variants: list[int]) -> int:
    """Units of a product one can buy: its variants' together, or its own without variants."""
    return sum(variants) if variants else own


def product_cache_key(product_id: str) -> str:
    return f"catalog:product:{product_id}"
