"""Helpers for the catalog tests: a sample product, making categories and products through
the API, and reading what the catalog stored."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select, text

from tests.conftest import Shop
from tienda.catalog.models import Image, Product, Variant

PRODUCT_FIELDS = {
    "productId",
    "name",
    "sku",
    "description",
    "price",
    "currency",
    "brand",
    "categoryId",
    "weightKg",
    "dimensions",
    "variants",
    "stock",
    "images",
    "isActive",
    "deletedAt",
    "createdAt",
    "updatedAt",
}
VARIANT_FIELDS = {"variantId", "sku", "attributes", "price", "stock"}
CATEGORY_FIELDS = {"categoryId", "name", "slug", "parentId", "createdAt"}
IMAGE_FIELDS = {"url", "altText", "position", "isPrimary"}

PRODUCT_ID = re.compile(r"p_[0-9a-z]+")
VARIANT_ID = re.compile(r"v_[0-9a-z]+")
CATEGORY_ID = re.compile(r"cat_[0-9a-z]+")

IMG1 = "https://cdn.example.com/p1.jpg"
IMG2 = "https://cdn.example.com/p2.jpg"
IMG3 = "https://cdn.example.com/p3.jpg"

# SEED.md section 6, ProductDTO, as a create body (no productId: the server assigns one).
PRODUCT: dict[str, Any] = {
    "name": "Men's T-Shirt",
    "sku": "TSHIRT-001",
    "description": "100% Cotton",
    "price": 499.00,
    "brand": "BrandX",
    "variants": [{"sku": "TSHIRT-RED-M", "attributes": {"color": "red", "size": "M"}, "price": 499}],
    "images": [IMG1],
}

OMIT = object()


async def admin(shop: Shop) -> dict[str, str]:
    """The Authorization header of a freshly made admin."""
    _, auth = await shop.admin()
    return auth


async def new_category(shop: Shop, auth: dict[str, str], name: str = "T-Shirts", **extra: Any) -> dict[str, Any]:
    response = await shop.client.post("/api/v1/categories", json={"name": name, **extra}, headers=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def product_body(**changes: Any) -> dict[str, Any]:
    """PRODUCT with `changes`; a change to OMIT drops the field."""
    body = {**PRODUCT, **changes}
    return {k: v for k, v in body.items() if v is not OMIT}


async def new_product(shop: Shop, auth: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = await shop.client.post("/api/v1/products", json=product_body(**changes), headers=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def published_product(shop: Shop, auth: dict[str, str], **changes: Any) -> dict[str, Any]:
    created = await new_product(shop, auth, **changes)
    response = await shop.client.post(f"/api/v1/products/{created['productId']}/publish", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def read_as_admin(shop: Shop, auth: dict[str, str], product_id: str) -> dict[str, Any]:
    response = await shop.client.get(f"/api/v1/products/{product_id}", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def count(shop: Shop, table: str, where: str = "1 = 1", **params: Any) -> int:
    return int(await shop.scalar("catalog", f"SELECT COUNT(*) FROM {table} WHERE {where}", **params))


async def stored_product(shop: Shop, product_id: str, column: str) -> Any:
    """One column of a stored product, read through the table so types (Decimal) come back
    the same on every backend."""
    table = Product.__table__
    async with shop.platform.db("catalog").engine.connect() as conn:
        return (await conn.execute(select(table.c[column]).where(table.c.product_id == product_id))).scalar_one()


async def stored_variants(shop: Shop, product_id: str) -> list[tuple[Any, ...]]:
    """(variant_id, sku, attributes, price) of a product's stored variants, oldest first."""
    products, variants = Product.__table__, Variant.__table__
    async with shop.platform.db("catalog").engine.connect() as conn:
        rows = await conn.execute(
            select(variants.c.variant_id, variants.c.sku, variants.c.attributes, variants.c.price)
            .join(products, products.c.id == variants.c.product_id)
            .where(products.c.product_id == product_id)
            .order_by(variants.c.id)
        )
        return [tuple(row) for row in rows]


async def stored_images(shop: Shop, product_id: str) -> list[tuple[Any, ...]]:
    """(url, alt_text, is_primary) of a product's stored images, in their order."""
    products, images = Product.__table__, Image.__table__
    async with shop.platform.db("catalog").engine.connect() as conn:
        rows = await conn.execute(
            select(images.c.url, images.c.alt_text, images.c.is_primary)
            .join(products, products.c.id == images.c.product_id)
            .where(products.c.product_id == product_id)
            .order_by(images.c.sort_order, images.c.id)
        )
        return [(url, alt, bool(primary)) for url, alt, primary in rows]


async def events(shop: Shop, event_type: str) -> list[dict[str, Any]]:
    return await shop.events("catalog", event_type)


async def snapshot(shop: Shop) -> dict[str, Any]:
    """Everything the catalog stores, to show a refused request changed nothing."""
    tables = {
        "categories": "category_id, name, slug, parent_id",
        "products": (
            "product_id, name, sku, description, price, price_currency, brand, category_id, weight_kg, "
            "dimensions, is_active, deleted_at, updated_at"
        ),
        "product_variants": "variant_id, product_id, sku, attributes, price",
        "product_images": "product_id, url, alt_text, is_primary, sort_order",
        "catalog_outbox_events": "event_id, type",
    }
    state: dict[str, Any] = {}
    async with shop.platform.db("catalog").engine.connect() as conn:
        for table, columns in tables.items():
            rows = await conn.execute(text(f"SELECT {columns} FROM {table} ORDER BY id"))
            state[table] = [tuple(row) for row in rows]
    return state
