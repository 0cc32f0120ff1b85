"""Tables of the payments module (SEED.md 4.5 `payments`): one payment per order, every webhook
delivery received (the gateway's event id is unique: a redelivery is recognised), and refunds."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tienda.platform.db import TYPE_ANNOTATION_MAP, BigPK, PublicId, new_metadata
from tienda.platform.events import outbox_tables


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


OUTBOX = outbox_tables(Base.metadata, "payments")

Money = Numeric(12, 2)


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    payment_id: Mapped[str] = mapped_column(PublicId, unique=True)
    order_id: Mapped[str] = mapped_column(PublicId, unique=True)
    """One payment per order: asking again for the order's payment returns this one."""
    user_id: Mapped[str] = mapped_column(PublicId)
    payment_provider: Mapped[str] = mapped_column(String(50))
    provider_reference: Mapped[str | None] = mapped_column(String(255), index=True)
    """The gateway's id of the checkout it opened (webhooks name it)."""
    provider_transaction_id: Mapped[str | None] = mapped_column(String(255))
    """The gateway's id of the captured money (refunds name it)."""
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    refunded_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    payment_url: Mapped[str | None] = mapped_column(String(1024))
    failure_reason: Mapped[str | None] = mapped_column(String(255))
    captured_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    refunds: Mapped[list[Refund]] = relationship(lazy="raise", order_by="Refund.id", back_populates="payment")


class PaymentEvent(Base):
    """A webhook delivery as received and what it did; the first of an event id wins."""

    __tablename__ = "payment_events"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(50))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    payment_id: Mapped[str | None] = mapped_column(PublicId, index=True)
    outcome: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_payment_events_provider_event_id"),)


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    refund_id: Mapped[str] = mapped_column(PublicId, unique=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    request_key: Mapped[str] = mapped_column(String(255))
    """What asked for it (an order's cancel, an admin's Idempotency-Key): asking twice refunds once."""
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(20))
    """PENDING (sent or about to be), SUCCEEDED, FAILED."""
    provider_refund_id: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    payment: Mapped[Payment] = relationship(lazy="raise", back_populates="refunds")

    __table_args__ = (
        UniqueConstraint("payment_id", "request_key", name="uq_refunds_payment_id_request_key"),
        Index("ix_refunds_status_updated_at", "status", "updated_at"),
    )


PAYLOAD_LIMIT = 60_000
"""Webhook bodies are kept for audit up to this many characters."""

__all__ = ["OUTBOX", "PAYLOAD_LIMIT", "Base", "Payment", "PaymentEvent", "Refund"]
