"""What a module tells the composition root about itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter
from sqlalchemy import MetaData

from tienda.platform.events import Consumer, OutboxTables
from tienda.platform.jobs import Job
from tienda.platform.web import CachedQuery, CachedRead

if TYPE_CHECKING:
    from tienda.platform.runtime import Platform


@dataclass(frozen=True)
class ModuleSpec:
    name: str
    metadata: MetaData
    outbox: OutboxTables
    migrations: str
    """Alembic script location as a package resource, e.g. `tienda.users:migrations`."""
    routers: tuple[APIRouter, ...] = ()
    """Mounted under `/api/v1` and the `/api` alias."""
    root_routers: tuple[APIRouter, ...] = ()
    """Mounted as they are, at the root (e.g. `/media/...` files served back, and the module's
    `/internal/<module>/...` routes other services call: see `web.internal_router`)."""
    cached_reads: tuple[CachedRead, ...] = ()
    """Public GET routes answered straight from the cache when their entry is there."""
    cached_queries: tuple[CachedQuery, ...] = ()
    """Public GET routes answered straight from the cache by their raw query string."""
    consumers: Callable[[Platform], Sequence[Consumer]] | None = None
    """Builds this module's event consumers once the platform exists."""
    jobs: Callable[[Platform], Sequence[Job]] | None = None
    """Builds this module's scheduled jobs once the platform exists."""
