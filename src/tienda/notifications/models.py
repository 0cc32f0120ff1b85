"""Tables of the notifications module (SEED.md 4.6): one row per message to one recipient on
one channel, kept PENDING until it is sent (SENT) or given up on (FAILED)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tienda.platform.db import TYPE_ANNOTATION_MAP, BigPK, PublicId, new_metadata
from tienda.platform.events import outbox_tables


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


OUTBOX = outbox_tables(Base.metadata, "notifications")


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigPK, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(PublicId, unique=True)
    user_id: Mapped[str | None] = mapped_column(PublicId)
    """The recipient's public user id; none for a message to an address alone."""
    recipient: Mapped[str] = mapped_column(String(320))
    """An e-mail address (EMAIL) or a phone number (SMS)."""
    type: Mapped[str] = mapped_column(String(30))
    channel: Mapped[str] = mapped_column(String(10))
    payload: Mapped[dict[str, Any]]
    """What the templates are rendered from, at each attempt."""
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    """When a PENDING one is due (a sender that claimed it holds it until then); none once settled."""
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime | None]
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of what makes it one message (source event or request, channel, recipient): a
    redelivered event or a retried request finds the row it made before."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_notifications_user_id_created_at", "user_id", "created_at"),
        Index("ix_notifications_type_created_at", "type", "created_at"),
    )
