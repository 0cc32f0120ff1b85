"""The events notifications consume: each creates its notifications PENDING, claimed for a
first attempt, in the consumer's unit of work (which also records the event as processed, so
a redelivery makes none), and sends them once that has committed. On PostgreSQL a user's
notifications and the processed row go in one statement instead (`from_event_at_once`)."""

from __future__ import annotations

from collections.abc import Callable

from tienda.inventory import events as inventory_events
from tienda.notifications.domain import NotificationType
from tienda.notifications.service import NotificationService
from tienda.orders import events as order_events
from tienda.platform.db import UnitOfWork
from tienda.platform.events import Consumer, Event, processed_params
from tienda.users import events as user_events

SOURCES: dict[str, NotificationType] = {
    order_events.ORDER_CONFIRMED: NotificationType.ORDER_CONFIRMATION,
    order_events.ORDER_SHIPPED: NotificationType.ORDER_SHIPPED,
    order_events.ORDER_DELIVERED: NotificationType.ORDER_DELIVERED,
    order_events.ORDER_CANCELLED: NotificationType.ORDER_CANCELLED,
    user_events.USER_REGISTERED: NotificationType.WELCOME,
    user_events.PASSWORD_RESET_REQUESTED: NotificationType.PASSWORD_RESET_OTP,
    inventory_events.LOW_STOCK: NotificationType.LOW_STOCK,
}
"""Which notification each consumed event makes."""


def consumers(service_of: Callable[[], NotificationService]) -> list[Consumer]:
    """`service_of` gives the service when an event arrives (built on first use, once every
    module of the process is there)."""

    def consumer(event_type: str, kind: NotificationType) -> Consumer:
        name = f"notifications.{kind.value.lower()}"

        async def handle(event: Event, uow: UnitOfWork) -> None:
            service = service_of()
            claimed = await service.from_event(uow, event_id=event.id, kind=kind, payload=event.payload)
            if claimed:
                uow.after_commit(lambda: service.send_claimed(claimed))

        async def at_once(event: Event) -> bool:
            service = service_of()
            if not service.db.multi_table_statements:
                return False
            processed = processed_params(name, event)
            claimed = await service.from_event_at_once(
                event_id=event.id, kind=kind, payload=event.payload, processed=processed
            )
            if claimed is None:
                return False
            await service.send_claimed(claimed)
            return True

        return Consumer(name=name, module="notifications", event_types=(event_type,), handler=handle, at_once=at_once)

    return [consumer(event_type, kind) for event_type, kind in SOURCES.items()]
