"""Routes of notifications (SEED.md 5.7): send one (services and admins), and the admins'
view of what was sent, to whom, and what failed."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Request, status

from tienda.notifications.domain import NotificationType, Status
from tienda.notifications.schemas import NotificationRead, SendRequest, SendResult
from tienda.notifications.service import NotificationService
from tienda.notifications.wiring import notification_service
from tienda.platform.auth import Admin
from tienda.platform.auth import Service as ServiceCaller
from tienda.platform.db import UnitOfWork
from tienda.platform.deps import unit_of_work
from tienda.platform.errors import error_responses
from tienda.platform.pagination import Page, PageQuery

router = APIRouter(prefix="/notifications", tags=["notifications"])


async def _service(request: Request) -> NotificationService:
    return notification_service(request.app.state.platform)


Service = Annotated[NotificationService, Depends(_service)]
Uow = Annotated[UnitOfWork, Depends(unit_of_work("notifications"))]
ReadUow = Annotated[UnitOfWork, Depends(unit_of_work("notifications", readonly=True))]


@router.post(
    "/send",
    summary="Send an e-mail and/or SMS to a user (service or admin)",
    description="Stores one notification per channel (PENDING) and answers 202; it is sent right after, and "
    "tried again with exponential backoff when sending fails, until SENT or FAILED. The payload is checked "
    "against what the type shows (400 naming the bad fields); an unknown user is 404. LOW_STOCK without "
    "`userId` goes to every admin. With an `Idempotency-Key`, a retried request returns the notifications "
    "the first one made instead of sending again.",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SendResult,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def send(
    body: SendRequest,
    caller: ServiceCaller,
    service: Service,
    uow: Uow,
    background: BackgroundTasks,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)] = None,
) -> SendResult:
    source = f"request:{caller.subject}:{idempotency_key}" if idempotency_key else f"request:{uuid.uuid4()}"
    accepted = await service.request(
        uow, kind=body.type, user_id=body.user_id, payload=body.payload, channel=body.channel, source=source
    )
    await uow.commit()
    background.add_task(service.try_deliver, accepted.ids)  # after the answer, outside the transaction
    return SendResult(notifications=accepted.notifications)


@router.get(
    "",
    summary="List notifications, newest first (admin)",
    response_model=Page[NotificationRead],
    responses=error_responses(400, 401, 403),
)
async def list_notifications(
    _admin: Admin,
    service: Service,
    uow: ReadUow,
    paging: PageQuery,
    userId: Annotated[str | None, Query(max_length=64, description="Only this user's.")] = None,
    type_: Annotated[NotificationType | None, Query(alias="type")] = None,
    status_: Annotated[Status | None, Query(alias="status", description="PENDING, SENT or FAILED.")] = None,
) -> Page[NotificationRead]:
    return await service.page(uow, user_id=userId, kind=type_, status=status_, page=paging.page, size=paging.size)


@router.get(
    "/{notificationId}",
    summary="Get a notification (admin)",
    response_model=NotificationRead,
    responses=error_responses(401, 403, 404),
)
async def get_notification(notificationId: str, _admin: Admin, service: Service, uow: ReadUow) -> NotificationRead:
    return await service.get(uow, notification_id=notificationId)
