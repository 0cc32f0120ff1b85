"""Tables of the orders module (SEED.md 4.5): orders with their items (names, SKUs, prices and
addresses copied in at checkout), the daily order number, coupons and their redemptions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tienda.platform.db import TYPE_ANNOTATION_MAP, BigPK, PublicId, new_metadata
from tienda.platform.events import outbox_tables


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


OUTBOX = outbox_tables(Base.metadata, "orders")


class Coupon(Base):
    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    coupon_id: Mapped[str] = mapped_column(PublicId, unique=True)
    code: Mapped[str] = mapped_column(PublicId, unique=True)
    """Upper case; what buyers type (matched case-insensitively by upper-casing the input)."""
    description: Mapped[str | None] = mapped_column(String(255))
    discount_type: Mapped[str] = mapped_column(String(10))
    value: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    min_order_amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0.00"))
    max_discount_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    usage_limit: Mapped[int | None] = mapped_column(Integer)
    per_user_limit: Mapped[int | None] = mapped_column(Integer)
    first_order_only: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    used_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CouponRedemption(Base):
    """One use of a coupon by an order; released (deleted) when the order fails or is cancelled."""

    __tablename__ = "coupon_redemptions"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id"), index=True)
    user_id: Mapped[str] = mapped_column(PublicId, index=True)
    order_id: Mapped[str] = mapped_column(PublicId)
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("order_id", name="uq_coupon_redemptions_order_id"),)


Money = Numeric(12, 2)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(PublicId, unique=True)
    """`ord_YYYYMMDD_NNNN`: the day (UTC) and its running number."""
    user_id: Mapped[str] = mapped_column(PublicId)
    status: Mapped[str] = mapped_column(String(20))
    payment_status: Mapped[str] = mapped_column(String(20))
    payment_method: Mapped[str] = mapped_column(String(20))
    payment_id: Mapped[str | None] = mapped_column(PublicId)
    payment_url: Mapped[str | None] = mapped_column(String(1024))
    """Where the buyer pays, while the payment is pending."""
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_amount: Mapped[Decimal] = mapped_column(Money)
    discount_amount: Mapped[Decimal] = mapped_column(Money)
    tax_amount: Mapped[Decimal] = mapped_column(Money)
    shipping_amount: Mapped[Decimal] = mapped_column(Money)
    total_amount: Mapped[Decimal] = mapped_column(Money)
    refunded_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    coupon_code: Mapped[str | None] = mapped_column(String(32))
    shipping_address_id: Mapped[str] = mapped_column(PublicId)
    billing_address_id: Mapped[str] = mapped_column(PublicId)
    shipping_address: Mapped[dict[str, Any]]
    billing_address: Mapped[dict[str, Any]]
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    failure_reason: Mapped[str | None] = mapped_column(String(255))
    saga_step: Mapped[str] = mapped_column(String(20))
    """Where checkout got to (see checkout.py: PLACED, RESERVED, PAYMENT_PENDING, CAPTURED, SELL, RELEASE,
    REFUND, DONE): the worker resumes from here."""
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    """Payment must arrive before this (the reservation's expiry)."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    items: Mapped[list[OrderItem]] = relationship(lazy="raise", cascade="all, delete-orphan", order_by="OrderItem.id")

    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_orders_user_id_idempotency_key"),
        Index("ix_orders_user_id_created_at", "user_id", "created_at"),
        Index("ix_orders_status_created_at", "status", "created_at"),
        Index("ix_orders_saga_step_updated_at", "saga_step", "updated_at"),
    )


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[str] = mapped_column(PublicId)
    variant_id: Mapped[str | None] = mapped_column(PublicId)
    sku: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255))
    attributes: Mapped[dict[str, Any]]
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    total_price: Mapped[Decimal] = mapped_column(Money)
    discount_amount: Mapped[Decimal] = mapped_column(Money)
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    tax_amount: Mapped[Decimal] = mapped_column(Money)


class OrderSequence(Base):
    """The last order number given out on a day (UTC)."""

    __tablename__ = "order_sequences"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)
