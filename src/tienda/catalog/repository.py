"""Every query of the catalog."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from tienda.catalog.models import Category, Product, Variant


async def category(session: AsyncSession, category_id: str) -> Category | None:
    return await session.scalar(select(Category).where(Category.category_id == category_id))


async def category_by_pk(session: AsyncSession, pk: int) -> Category | None:
    return await session.get(Category, pk)


async def category_by_slug(session: AsyncSession, slug: str) -> Category | None:
    return await session.scalar(select(Category).where(Category.slug == slug))


async def categories(session: AsyncSession, *, offset: int, limit: int) -> tuple[list[Category], int]:
    total = await session.scalar(select(func.count()).select_from(Category)) or 0
    rows = await session.scalars(select(Category).order_by(Category.name, Category.id).offset(offset).limit(limit))
    return list(rows), total


async def public_ids_of_categories(session: AsyncSession, pks: set[int]) -> dict[int, str]:
    if not pks:
        return {}
    rows = await session.execute(select(Category.id, Category.category_id).where(Category.id.in_(pks)))
    return {row.id: row.category_id for row in rows}


async def category_in_use(session: AsyncSession, pk: int) -> bool:
    child = await session.scalar(select(Category.id).where(Category.parent_id == pk).limit(1))
    product = await session.scalar(select(Product.id).where(Product.category_id == pk).limit(1))
    return child is not None or product is not None


async def product(session: AsyncSession, product_id: str, *, for_update: bool = False) -> Product | None:
    query = (
        select(Product)
        .where(Product.product_id == product_id)
        .options(selectinload(Product.variants), selectinload(Product.images))
    )
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


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
