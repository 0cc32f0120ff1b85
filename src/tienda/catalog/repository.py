"""Every query of the catalog."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple, TypeVarTuple, cast

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from tienda.catalog.models import OUTBOX, Category, Product, Variant
from tienda.platform.db import Database

_Ts = TypeVarTuple("_Ts")


async def category(session: AsyncSession, category_id: str) -> Category | None:
    return await session.scalar(select(Category).where(Category.category_id == category_id))


async def category_by_pk(session: AsyncSession, pk: int) -> Category | None:
    return await session.get(Category, pk)


async def category_by_slug(session: AsyncSession, slug: str) -> Category | None:
    return await session.scalar(select(Category).where(Category.slug == slug))


async def all_categories(session: AsyncSession) -> list[Category]:
    return list(await session.scalars(select(Category).order_by(Category.name, Category.id)))


_PUBLIC_IDS_OF_CATEGORIES = select(Category.id, Category.category_id).where(
    Category.id.in_(bindparam("pks", expanding=True))
)


async def public_ids_of_categories(session: AsyncSession, pks: set[int]) -> dict[int, str]:
    if not pks:
        return {}
    rows = await session.execute(_PUBLIC_IDS_OF_CATEGORIES, {"pks": list(pks)})
    return {row.id: row.category_id for row in rows}


async def category_in_use(session: AsyncSession, pk: int) -> bool:
    child = await session.scalar(select(Category.id).where(Category.parent_id == pk).limit(1))
    product = await session.scalar(select(Product.id).where(Product.category_id == pk).limit(1))
    return child is not None or product is not None


_PRODUCT = (
    select(Product)
    .where(Product.product_id == bindparam("product_id"))
    .options(selectinload(Product.variants), selectinload(Product.images))
)
_PRODUCT_FOR_UPDATE = _PRODUCT.with_for_update()
"""Built once: building the select with its loader options and cache key per call cost about
as much CPU as running it."""
_PRODUCT_AS_STORED = _PRODUCT_FOR_UPDATE.execution_options(populate_existing=True)


class StockCell(NamedTuple):
    """One figure of the stock copy: the available units and the time of the event they came from."""

    available: int
    at: datetime | None


class StockRows(NamedTuple):
    """What the stock copy needs of a product, read under the product row's lock: its key,
    version and visibility, its own figure, and its variants' figures by public id."""

    pk: int
    updated_at: datetime
    public: bool
    own: StockCell
    variants: dict[str, StockCell]


async def stock_rows(session: AsyncSession, product_id: str) -> StockRows | None:
    """The product row locked, as every product write does, and the figures of the product
    and its variants: two light statements, neither the product whole nor its images."""
    head = (await session.execute(_STOCK_HEAD, {"product_id": product_id})).one_or_none()
    if head is None:
        return None
    pk, updated_at, is_active, deleted_at, available, at = head
    variants = await session.execute(_VARIANT_STOCKS, {"pk_": pk})
    return StockRows(
        pk=pk,
        updated_at=updated_at,
        public=bool(is_active) and deleted_at is None,
        own=StockCell(available, at),
        variants={variant_id: StockCell(n, when) for variant_id, n, when in variants},
    )


async def set_stock_copy(
    session: AsyncSession, pk: int, variant_id: str | None, *, available: int, at: datetime
) -> None:
    """The copy's figure of the product (`variant_id` None) or of its variant, and its time."""
    params = {"pk_": pk, "available_": available, "at_": at}
    if variant_id is None:
        await session.execute(_SET_PRODUCT_STOCK, params)
    else:
        await session.execute(_SET_VARIANT_STOCK, params | {"variant_id_": variant_id})


_PRODUCTS, _VARIANTS = cast(Table, Product.__table__), cast(Table, Variant.__table__)
_STOCK_HEAD = (
    select(
        _PRODUCTS.c.id,
        _PRODUCTS.c.updated_at,
        _PRODUCTS.c.is_active,
        _PRODUCTS.c.deleted_at,
        _PRODUCTS.c.stock_available,
        _PRODUCTS.c.stock_updated_at,
    )
    .where(_PRODUCTS.c.product_id == bindparam("product_id"))
    .with_for_update()
)
_VARIANT_STOCKS = select(_VARIANTS.c.variant_id, _VARIANTS.c.stock_available, _VARIANTS.c.stock_updated_at).where(
    _VARIANTS.c.product_id == bindparam("pk_")
)
_STOCK_VALUES: dict[str, Any] = {"stock_available": bindparam("available_"), "stock_updated_at": bindparam("at_")}
_SET_PRODUCT_STOCK = update(_PRODUCTS).where(_PRODUCTS.c.id == bindparam("pk_")).values(_STOCK_VALUES)
_SET_VARIANT_STOCK = (
    update(_VARIANTS)
    .where(_VARIANTS.c.product_id == bindparam("pk_"), _VARIANTS.c.variant_id == bindparam("variant_id_"))
    .values(_STOCK_VALUES)
)


class StockHead(NamedTuple):
    """What the stock copy needs of a product after taking a figure at once: its version,
    whether the public sees it, and its variants' figures as they are now (empty for a figure
    of the product's own)."""

    updated_at: datetime
    public: bool
    variants: dict[str, int]


async def take_stock_at_once(
    db: Database,
    product_id: str,
    variant_id: str | None,
    *,
    available: int,
    at: datetime,
    processed: dict[str, Any],
) -> StockHead | None:
    """The copy's new figure of a product (`variant_id` None) or of its variant, and its time,
    with the event's processed row (`processed`: the parameters of
    `OutboxTables.add_processed_for_each`), in one statement that commits as it runs
    (`Database.multi_table_statements`), under the product row's lock as every product write.
    Only when it cannot change whether the product can be bought: the copy held units and
    still does (`available` > 0, which the caller checks). A variant's figure comes back with
    the product's other variants' figures, read under their row locks: as the last writer
    committed them, not as the statement's snapshot had them before it waited for the lock.
    None, with nothing written, when the item is not known, the copy is newer than `at`, or
    the copy held none; an event recorded before fails the statement (IntegrityError), with
    nothing written."""
    params = {"product_id": product_id, "variant_id_": variant_id, "available_": available, "at_": at} | processed
    rows = await db.rows(_take_stock(variant_id is not None), params)
    if not rows:
        return None
    updated_at, public = rows[0][:2]
    variants: dict[str, int] = {}
    if variant_id is not None:
        variants = {str(row[2]): int(row[3]) for row in rows if row[2] is not None} | {variant_id: available}
    return StockHead(updated_at=updated_at.astimezone(UTC), public=bool(public), variants=variants)


@cache
def _take_stock(of_a_variant: bool) -> Select[Any]:
    stamp = DateTime(timezone=True)  # read as the driver gives it: Database.rows takes no converted column
    figures = None
    if of_a_variant:
        head = (
            select(_PRODUCTS.c.id, _PRODUCTS.c.updated_at, _PRODUCTS.c.is_active, _PRODUCTS.c.deleted_at)
            .where(_PRODUCTS.c.product_id == bindparam("product_id"))
            .with_for_update()
            .cte("head")
        )
        # Locked, the rows are read as last committed, past the statement's snapshot.
        figures = (
            select(_VARIANTS.c.variant_id, _VARIANTS.c.stock_available)
            .where(_VARIANTS.c.product_id == head.c.id, _VARIANTS.c.variant_id != bindparam("variant_id_"))
            .with_for_update(of=_VARIANTS)
            .cte("v")
        )
        table, version = _VARIANTS, head.c
        where = [_VARIANTS.c.product_id == head.c.id, _VARIANTS.c.variant_id == bindparam("variant_id_")]
    else:
        table, version = _PRODUCTS, _PRODUCTS.c
        where = [_PRODUCTS.c.product_id == bindparam("product_id")]
    taken = (
        update(table)
        .where(
            *where,
            or_(table.c.stock_updated_at.is_(None), table.c.stock_updated_at <= bindparam("at_")),
            table.c.stock_available > 0,
        )
        .values(_STOCK_VALUES)
        .returning(
            type_coerce(version.updated_at, stamp).label("updated_at"),
            and_(version.is_active, version.deleted_at.is_(None)).label("public"),
        )
        .cte("m")
    )
    recorded = OUTBOX.add_processed_for_each(taken).cte("p")
    if figures is None:
        return select(taken.c.updated_at, taken.c.public).add_cte(recorded)
    return (
        select(taken.c.updated_at, taken.c.public, figures.c.variant_id, figures.c.stock_available)
        .select_from(taken.outerjoin(figures, true()))
        .add_cte(recorded)
    )


async def product(session: AsyncSession, product_id: str, *, for_update: bool = False) -> Product | None:
    return await session.scalar(_PRODUCT_FOR_UPDATE if for_update else _PRODUCT, {"product_id": product_id})


async def product_as_stored(session: AsyncSession, product_id: str) -> Product | None:
    """The product whole and locked, as the database has it now, even where this session holds
    it already (a figure of the stock copy was written past the ORM in the same transaction)."""
    return await session.scalar(_PRODUCT_AS_STORED, {"product_id": product_id})


_PRODUCTS_OF_IDS = (
    select(Product)
    .where(Product.product_id.in_(bindparam("product_ids", expanding=True)))
    .options(selectinload(Product.variants), selectinload(Product.images))
)
"""Built once, as `_PRODUCT`: the products a cart or an order prices that the cache misses."""


async def products(session: AsyncSession, product_ids: list[str]) -> list[Product]:
    """The products of these public ids that exist (soft-deleted and unpublished included)."""
    return list(await session.scalars(_PRODUCTS_OF_IDS, {"product_ids": list(product_ids)}))


async def published_products_after(session: AsyncSession, after_pk: int, limit: int) -> list[Product]:
    """Published, undeleted products in primary-key order, from just after `after_pk`."""
    query = (
        select(Product)
        .where(Product.id > after_pk, Product.is_active.is_(True), Product.deleted_at.is_(None))
        .order_by(Product.id)
        .limit(limit)
        .options(selectinload(Product.variants), selectinload(Product.images))
    )
    return list(await session.scalars(query))


async def product_id_exists(session: AsyncSession, product_id: str) -> bool:
    return await session.scalar(select(Product.id).where(Product.product_id == product_id)) is not None


async def skus_in_use(session: AsyncSession, skus: set[str], *, except_product_pk: int | None = None) -> set[str]:
    """SKUs among `skus` used by another product or any variant of another product."""
    if not skus:
        return set()
    products = select(Product.sku).where(Product.sku.in_(skus))
    variants = select(Variant.sku).where(Variant.sku.in_(skus))
    if except_product_pk is not None:
        products = products.where(Product.id != except_product_pk)
        variants = variants.where(Variant.product_id != except_product_pk)
    used = set(await session.scalars(products)) | set(await session.scalars(variants))
    return {sku for sku in used if sku is not None}


def _visible(
    query: Select[*_Ts],
    *,
    category_pks: set[int] | None,
    brand: str | None,
    min_price: Decimal | None,
    max_price: Decimal | None,
) -> Select[*_Ts]:
    query = query.where(Product.is_active.is_(True), Product.deleted_at.is_(None))
    if category_pks is not None:
        query = query.where(Product.category_id.in_(category_pks))
    if brand is not None:
        query = query.where(Product.brand == brand)
    if min_price is not None:
        query = query.where(Product.price >= min_price)
    if max_price is not None:
        query = query.where(Product.price <= max_price)
    return query


SORTS: dict[str, tuple[ColumnElement[Any], ...]] = {
    "price_asc": (Product.price.asc(), Product.id.asc()),
    "price_desc": (Product.price.desc(), Product.id.desc()),
    "newest": (Product.created_at.desc(), Product.id.desc()),
    "name_asc": (Product.name.asc(), Product.id.asc()),
}


async def listing(
    session: AsyncSession, *, filters: dict[str, Any], sort: str, offset: int, limit: int
) -> tuple[list[Product], int]:
    total = await session.scalar(_visible(select(func.count(Product.id)), **filters)) or 0
    query = _visible(select(Product), **filters).options(selectinload(Product.images))
    rows = await session.scalars(query.order_by(*SORTS[sort]).offset(offset).limit(limit))
    return list(rows), total


async def brand_counts(session: AsyncSession, *, filters: dict[str, Any]) -> list[tuple[str, int]]:
    query = _visible(select(Product.brand, func.count(Product.id)), **filters).where(Product.brand.is_not(None))
    rows = await session.execute(query.group_by(Product.brand).order_by(func.count(Product.id).desc(), Product.brand))
    return [(str(brand), int(count)) for brand, count in rows]


async def category_counts(session: AsyncSession, *, filters: dict[str, Any]) -> list[tuple[str, str, int]]:
    query = _visible(
        select(Category.category_id, Category.name, func.count(Product.id)).join(
            Category, Product.category_id == Category.id
        ),
        **filters,
    )
    rows = await session.execute(
        query.group_by(Category.category_id, Category.name).order_by(func.count(Product.id).desc(), Category.name)
    )
    return [(public_id, name, int(count)) for public_id, name, count in rows]


async def price_range_counts(
    session: AsyncSession, *, filters: dict[str, Any], bounds: list[tuple[Decimal, Decimal | None]]
) -> list[int]:
    columns = [
        func.sum(case(((Product.price >= low) & (Product.price < high if high is not None else true()), 1), else_=0))
        for low, high in bounds
    ]
    row = (await session.execute(_visible(select(*columns), **filters))).one()
    return [int(value or 0) for value in row]


async def category_tree(session: AsyncSession) -> list[tuple[int, int | None, str, str]]:
    rows = await session.execute(select(Category.id, Category.parent_id, Category.category_id, Category.slug))
    return [(int(pk), parent, public_id, slug) for pk, parent, public_id, slug in rows]
