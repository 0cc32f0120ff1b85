"""The payments module as the composition root sees it."""

from __future__ import annotations

from tienda.payments import api, internal
from tienda.payments.models import OUTBOX, Base
from tienda.payments.wiring import payment_jobs
from tienda.platform.modules import ModuleSpec

MODULE = ModuleSpec(
    name="payments",
    metadata=Base.metadata,
    outbox=OUTBOX,
    migrations="tienda.payments:migrations",
    routers=(api.payments,),
    root_routers=(internal.router,),
    jobs=payment_jobs,
)
