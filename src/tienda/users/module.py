"""The users module as the composition root sees it."""

from __future__ import annotations

from tienda.platform.modules import ModuleSpec
from tienda.users import api, internal
from tienda.users.models import OUTBOX, Base

MODULE = ModuleSpec(
    name="users",
    metadata=Base.metadata,
    outbox=OUTBOX,
    migrations="tienda.users:migrations",
    routers=(api.router,),
    root_routers=(internal.router,),
)
