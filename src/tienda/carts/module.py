"""The carts module as the composition root sees it."""

from __future__ import annotations

from tienda.carts import api, internal
from tienda.carts.models import OUTBOX, Base
from tienda.carts.wiring import cart_jobs
from tienda.platform.modules import ModuleSpec

MODULE = ModuleSpec(
    name="carts",
    metadata=Base.metadata,
    outbox=OUTBOX,
    migrations="tienda.carts:migrations",
    routers=(api.router,),
    root_routers=(internal.router,),
    jobs=cart_jobs,
)
