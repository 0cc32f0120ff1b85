"""A realistic demo catalog, made deterministically from a seed number and bulk-inserted.

`tienda seed --products N` and the first start of `tienda dev` use it. Same seed, same
catalog: categories tree, brands, products with colour/size (or storage) variants, image
URLs and INR prices. Rows go in with multi-row INSERTs in batches, so 100,000 products take
seconds, not the hours one API call per product would.

With a `stock` sink, every variant (and every product without variants) also gets demo units,
as deterministic as the rest: most between 1 and 200, about one in ten none, so "out of stock"
shows in the demo. The catalog writes them into its copy of inventory's figures and hands them
to the sink, which stocks inventory with the same numbers (`tienda seed` passes inventory's
own seeding): bulk inserts publish no events, so both sides are written here, and agree.
Without a sink nothing is stocked and the copy stays 0, as inventory has nothing either.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from slugify import slugify
from sqlalchemy import func, insert, select

from tienda.catalog.models import Category, Image, Product, Variant
from tienda.platform.db import Database

_ALPHABET = "0123456789abcdefghijkmnopqrstuvwxyz"

StockItem = tuple[str, str | None, int]
"""(product id, variant id or None for a product without variants, units available)."""
StockSink = Callable[[list[StockItem]], Awaitable[object]]
OUT_OF_STOCK_SHARE = 0.1
MAX_DEMO_UNITS = 200


@dataclass(frozen=True)
class Department:
    name: str
    children: dict[str, tuple[str, ...]]
    """Sub-category → the kinds of product it holds."""
    brands: tuple[str, ...]
    features: tuple[str, ...]
    price: tuple[int, int]
    axes: dict[str, tuple[str, ...]]


DEPARTMENTS = (
    Department(
        "Clothing",
        {
            "T-Shirts": ("T-Shirt", "Polo Shirt"),
            "Shirts": ("Shirt", "Kurta"),
            "Jeans": ("Jeans", "Chinos"),
            "Jackets": ("Jacket", "Hoodie"),
        },
        ("Urban Loom", "Khadi Co", "Northwind", "Monsoon", "Blue Orbit"),
        ("100% cotton", "breathable linen", "stretch denim", "organic cotton", "wool blend", "relaxed fit"),
        (299, 4999),
        {"color": ("red", "blue", "black", "white", "green", "grey"), "size": ("S", "M", "L", "XL")},
    ),
    Department(
        "Footwear",
        {
            "Sneakers": ("Sneakers", "Running Shoes"),
            "Sandals": ("Sandals", "Flip Flops"),
            "Formal Shoes": ("Loafers", "Oxford Shoes", "Boots"),
        },
        ("Stride", "Paduka", "Trailhead", "Metro Walk"),
        ("cushioned sole", "waterproof leather", "breathable mesh", "memory foam insole", "anti-slip grip"),
        (499, 8999),
        {"color": ("black", "white", "brown", "navy"), "size": ("6", "7", "8", "9", "10")},
    ),
    Department(
        "Electronics",
        {
            "Phones": ("Smartphone",),
            "Laptops": ("Laptop", "Tablet"),
            "Headphones": ("Headphones", "Earbuds"),
            "Smartwatches": ("Smartwatch", "Fitness Band"),
        },
        ("Voltra", "Nimbus", "Quanta", "Sonik", "Pixelon"),
        ("wireless", "fast charging", "noise cancelling", "long battery life", "AMOLED display", "water resistant"),
        (999, 149999),
        {"color": ("black", "silver", "blue"), "storage": ("64GB", "128GB", "256GB")},
    ),
    Department(
        "Home",
        {
            "Kitchen": ("Pressure Cooker", "Dinner Set", "Kettle"),
            "Decor": ("Lamp", "Wall Clock", "Cushion Cover"),
            "Bedding": ("Bedsheet", "Quilt", "Pillow"),
        },
        ("Ghar", "Terracotta", "Nest & Co", "Brass Lane"),
        ("stainless steel", "handcrafted", "hand-painted ceramic", "soft microfiber", "solid teak"),
        (199, 12999),
        {"color": ("red", "beige", "teal", "mustard")},
    ),
    Department(
        "Books",
        {
            "Fiction": ("Novel", "Poetry Collection"),
            "Non-fiction": ("Biography", "Cookbook", "Atlas"),
            "Children": ("Picture Book", "Storybook"),
        },
        ("Penguin Leaf", "Harbour Press", "Inkwell"),
        ("hardcover", "paperback", "illustrated edition", "bestseller", "award-winning"),
        (149, 1499),
        {},
    ),
)

ADJECTIVES = (
    "Classic", "Everyday", "Premium", "Slim", "Comfort", "Pro", "Lite", "Vintage", "Organic", "Urban",
    "Handwoven", "Compact", "Deluxe", "Essential", "Bold",
)  # fmt: skip


def _public_id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_" + "".join(rng.choice(_ALPHABET) for _ in range(12))


def _price(rng: random.Random, low: int, high: int) -> Decimal:
    rupees = rng.randint(low, high)
    return Decimal(rupees) if rng.random() < 0.5 else Decimal(rupees) - Decimal("0.01")


async def seed_catalog(
    db: Database, *, products: int, seed: int = 1, now: datetime, batch: int = 2000, stock: StockSink | None = None
) -> int:
    """Adds `products` products (and the category tree if missing); returns how many were added.
    With `stock`, each batch's demo units go to it once the batch is in the catalog."""
    rng = random.Random(seed)
    # Its own stream: the catalog of a seed is the same with or without stock.
    units = _units(random.Random(f"stock:{seed}")) if stock is not None else None
    async with db.uow() as uow:
        leaves = await _categories(uow.session, now)
        await uow.commit()
    added = 0
    while added < products:
        count = min(batch, products - added)
        rows, variants, images = _batch(rng, leaves, count, now - timedelta(seconds=products - added))
        stocked = _stock(rows, variants, units) if units is not None else []
        async with db.uow() as uow:
            await uow.session.execute(insert(Product), rows)
            result = await uow.session.execute(
                select(Product.product_id, Product.id).where(Product.product_id.in_([r["product_id"] for r in rows]))
            )
            ids = {row.product_id: row.id for row in result}
            if variants:
                await uow.session.execute(insert(Variant), [v | {"product_id": ids[v["product_id"]]} for v in variants])
            if images:
                await uow.session.execute(insert(Image), [i | {"product_id": ids[i["product_id"]]} for i in images])
            await uow.commit()
        if stock is not None:
            await stock(stocked)
        added += count
    return added


def _units(rng: random.Random) -> Callable[[], int]:
    def draw() -> int:
        return 0 if rng.random() < OUT_OF_STOCK_SHARE else rng.randint(1, MAX_DEMO_UNITS)

    return draw


def _stock(products: list[dict[str, Any]], variants: list[dict[str, Any]], units: Callable[[], int]) -> list[StockItem]:
    """Draws the units of each variant, or of the product when it has none, into the rows (the
    catalog's copy) and returns them as inventory's items. The copy's time stays empty: no
    event made it, so the first event about the item, whenever it was, is newer."""
    with_variants = {v["product_id"] for v in variants}
    items: list[StockItem] = []
    for row in products:
        if row["product_id"] in with_variants:
            row["stock_available"] = 0  # its variants hold the stock
        else:
            row["stock_available"] = units()
            items.append((row["product_id"], None, row["stock_available"]))
    for row in variants:
        row["stock_available"] = units()
        items.append((row["product_id"], row["variant_id"], row["stock_available"]))
    return items


async def count_products(db: Database) -> int:
    async with db.reader() as uow:
        return int(await uow.session.scalar(select(func.count(Product.id))) or 0)


async def _categories(session: Any, now: datetime) -> list[tuple[int, Department, tuple[str, ...]]]:
    """The fixed tree: departments with sub-categories. Returns (leaf pk, department, kinds)."""
    rng = random.Random(0)  # category ids do not depend on the product seed
    leaves: list[tuple[int, Department, tuple[str, ...]]] = []
    for department in DEPARTMENTS:
        top = await session.scalar(select(Category).where(Category.slug == _slug(department.name)))
        if top is None:
            top = Category(
                category_id=_public_id(rng, "cat"), name=department.name, slug=_slug(department.name), created_at=now
            )
            session.add(top)
            await session.flush()
        for child, kinds in department.children.items():
            slug = _slug(f"{department.name} {child}")
            leaf = await session.scalar(select(Category).where(Category.slug == slug))
            if leaf is None:
                leaf = Category(
                    category_id=_public_id(rng, "cat"), name=child, slug=slug, parent_id=top.id, created_at=now
                )
                session.add(leaf)
                await session.flush()
            leaves.append((leaf.id, department, kinds))
    return leaves


def _slug(text: str) -> str:
    return str(slugify(text))


def _batch(
    rng: random.Random, leaves: Sequence[tuple[int, Department, tuple[str, ...]]], count: int, start: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    products: list[dict[str, Any]] = []
    variants: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for n in range(count):
        category_pk, department, kinds = rng.choice(leaves)
        brand = rng.choice(department.brands)
        noun = rng.choice(kinds)
        features = rng.sample(department.features, 2)
        name = f"{brand} {rng.choice(ADJECTIVES)} {noun}"
        product_id = _public_id(rng, "p")
        price = _price(rng, *department.price)
        created = start + timedelta(seconds=n)
        products.append(
            {
                "product_id": product_id,
                "name": name,
                "sku": product_id.upper().replace("_", "-"),
                "description": f"{name} by {brand}. {features[0].capitalize()}, {features[1]}: "
                f"a {noun.lower()} from our {department.name.lower()} range.",
                "price": price,
                "price_currency": "INR",
                "brand": brand,
                "category_id": category_pk,
                "is_active": True,
                "created_at": created,
                "updated_at": created,
            }
        )
        if department.axes:
            axes = list(department.axes.items())
            for v in range(rng.randint(1, 3)):
                attributes = {axis: rng.choice(values) for axis, values in axes}
                variants.append(
                    {
                        "product_id": product_id,
                        "variant_id": _public_id(rng, "v"),
                        "sku": f"{product_id.upper().replace('_', '-')}-{v + 1}",
                        "attributes": attributes,
                        "price": price if v == 0 else price + Decimal(rng.choice((0, 50, 100, 200))),
                        "created_at": created,
                    }
                )
        for i in range(rng.randint(1, 3)):
            images.append(
                {
                    "product_id": product_id,
                    "url": f"https://cdn.tienda.example/p/{product_id}/{i + 1}.jpg",
                    "alt_text": f"{name}, view {i + 1}",
                    "is_primary": i == 0,
                    "sort_order": i,
                }
            )
    return products, variants, images
