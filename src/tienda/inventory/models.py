"""Tables of the inventory module (SEED.md 4.4), with reservations and an audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tienda.platform.db import TYPE_ANNOTATION_MAP, BigPK, PublicId, new_metadata
from tienda.platform.events import outbox_tables

NO_VARIANT = ""
"""The variant id of stock kept for a product as a whole (a product without variants)."""


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


OUTBOX = outbox_tables(Base.metadata, "inventory")


class StockItem(Base):
    """One row per (product, variant): available = stock_count - reserved_count, never < 0."""

    __tablename__ = "inventory"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(PublicId)
    variant_id: Mapped[str] = mapped_column(PublicId, default=NO_VARIANT)
    stock_count: Mapped[int] = mapped_column(Integer, default=0)
    reserved_count: Mapped[int] = mapped_column(Integer, default=0)
    threshold: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]
    cache_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Which Redis counter of this row is current (see `counters.py`): a reload of the counter
    and every change made without it (database strategy) move it on."""

    __table_args__ = (
        UniqueConstraint("product_id", "variant_id", name="uq_inventory_product_variant"),
        # The last line of defence: whatever the code does, the database refuses an oversell.
        CheckConstraint("stock_count >= 0 AND reserved_count >= 0 AND reserved_count <= stock_count", name="counts"),
    )


class Reservation(Base):
    """Units of one item held for an order until committed, released or expired."""

    __tablename__ = "inventory_reservations"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(PublicId)
    product_id: Mapped[str] = mapped_column(PublicId)
    variant_id: Mapped[str] = mapped_column(PublicId)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("order_id", "product_id", "variant_id", name="uq_inventory_reservations_item"),
        Index("ix_inventory_reservations_status_expires", "status", "expires_at"),
    )


class Movement(Base):
    """The audit trail: every change of stock or reservations, with why and by whom."""

    __tablename__ = "inventory_movements"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(PublicId, index=True)
    variant_id: Mapped[str] = mapped_column(PublicId)
    kind: Mapped[str] = mapped_column(String(20))
    stock_delta: Mapped[int] = mapped_column(Integer)
    reserved_delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(255))
    order_id: Mapped[str | None] = mapped_column(PublicId, index=True)
    actor: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
