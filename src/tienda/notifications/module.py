"""The notifications module as the composition root sees it."""

from __future__ import annotations

from tienda.notifications import api, events
from tienda.notifications.models import OUTBOX, Base
from tienda.notifications.wiring import notification_jobs, notification_service
from tienda.platform.modules import ModuleSpec

MODULE = ModuleSpec(
    name="notifications",
    metadata=Base.metadata,
    outbox=OUTBOX,
    migrations="tienda.notifications:migrations",
    routers=(api.router,),
    consumers=lambda platform: events.consumers(lambda: notification_service(platform)),
    jobs=notification_jobs,
)
