"""The orders module as the composition root sees it."""

from __future__ import annotations

from tienda.orders import api
from tienda.orders.models import OUTBOX, Base
from tienda.orders.wiring import order_consumers, order_jobs
from tienda.platform.modules import ModuleSpec

MODULE = ModuleSpec(
    name="orders",
    metadata=Base.metadata,
    outbox=OUTBOX,
    migrations="tienda.orders:migrations",
    routers=(api.orders, api.coupons),
    consumers=order_consumers,
    jobs=order_jobs,
)
