"""Tables of the orders module (SEED.md 4.5): coupons and their redemptions so far."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
