"""Tables of the search module: only its event bookkeeping. The products it finds live in
its own tantivy index (index.py), as the seed's Search Service owns Elasticsearch."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from tienda.platform.db import TYPE_ANNOTATION_MAP, new_metadata
from tienda.platform.events import outbox_tables


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


OUTBOX = outbox_tables(Base.metadata, "search")
