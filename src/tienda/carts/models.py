"""Tables of the carts module (SEED.md 4.3) for the SQL cart store; the Redis store keeps the
same carts as one hash each and does not use them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tienda.platform.db import TYPE_ANNOTATION_MAP, BigPK, PublicId, new_metadata
from tienda.platform.events import outbox_tables


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


OUTBOX = outbox_tables(Base.metadata, "carts")


class Cart(Base):
    """A signed-in user's cart (`user_id` set, one per user) or a guest's (`user_id` empty,
    reached through the cart token, gone after `expires_at`)."""

    __tablename__ = "carts"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    cart_id: Mapped[str] = mapped_column(PublicId, unique=True)
    user_id: Mapped[str | None] = mapped_column(PublicId, unique=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)


class CartItem(Base):
    __tablename__ = "cart_items"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(PublicId, unique=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    product_id: Mapped[str] = mapped_column(PublicId)
    variant_id: Mapped[str] = mapped_column(PublicId)
    """"" for a product without variants (a unique key cannot hold a NULL that counts)."""
    quantity: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("cart_id", "product_id", "variant_id", name="uq_cart_items_line"),)
