"""The catalog module as the composition root sees it."""

from __future__ import annotations

from tienda.catalog import api
from tienda.catalog.models import OUTBOX, Base
from tienda.platform.modules import ModuleSpec

MODULE = ModuleSpec(
    name="catalog",
    metadata=Base.metadata,
    outbox=OUTBOX,
    migrations="tienda.catalog:migrations",
    routers=(api.products, api.categories),
    root_routers=(api.media,),
)
