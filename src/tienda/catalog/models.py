"""Tables of the catalog module (SEED.md 4.2)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tienda.platform.db import TYPE_ANNOTATION_MAP, BigPK, new_metadata
from tienda.platform.events import outbox_tables


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


OUTBOX = outbox_tables(Base.metadata, "catalog")


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    category_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(255), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    created_at: Mapped[datetime]


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    sku: Mapped[str | None] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    price_currency: Mapped[str] = mapped_column(String(3), default="INR")
    brand: Mapped[str | None] = mapped_column(String(255), index=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(8, 3))
    dimensions: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # A copy of inventory's product-level stock (a product without variants), as of the
    # `inventory.updated` event that last changed it; see catalog/stock.py.
    stock_available: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    stock_updated_at: Mapped[datetime | None]

    variants: Mapped[list[Variant]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True, order_by="Variant.id"
    )
    images: Mapped[list[Image]] = relationship(
        lazy="raise", cascade="all, delete-orphan", passive_deletes=True, order_by="(Image.sort_order, Image.id)"
    )

    __table_args__ = (Index("ix_products_is_active_created_at", "is_active", "created_at"),)


class Image(Base):
    __tablename__ = "product_images"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(1024))
    alt_text: Mapped[str | None] = mapped_column(String(255))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Variant(Base):
    __tablename__ = "product_variants"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    variant_id: Mapped[str] = mapped_column(String(64), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str | None] = mapped_column(String(100), unique=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    created_at: Mapped[datetime]
    # A copy of inventory's available units of this variant (0 until inventory tells), as of
    # the time of the `inventory.updated` event that last changed it: older events are ignored.
    stock_available: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    stock_updated_at: Mapped[datetime | None]
