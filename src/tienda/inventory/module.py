"""The inventory module as the composition root sees it."""

from __future__ import annotations

from tienda.inventory import api, internal
from tienda.inventory.models import OUTBOX, Base
from tienda.inventory.wiring import inventory_jobs
from tienda.platform.modules import ModuleSpec

MODULE = ModuleSpec(
    name="inventory",
    metadata=Base.metadata,
    outbox=OUTBOX,
    migrations="tienda.inventory:migrations",
    routers=(api.router,),
    root_routers=(internal.router,),
    jobs=inventory_jobs,
)
