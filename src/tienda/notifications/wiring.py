"""Builds the notifications service from the platform, once per process."""

from __future__ import annotations

from tienda.catalog.client import catalog_client
from tienda.notifications.service import NotificationService
from tienda.notifications.sms import sms_sender
from tienda.platform.jobs import Job
from tienda.platform.runtime import Platform
from tienda.users.client import users_client


def notification_service(platform: Platform) -> NotificationService:
    def build(p: Platform) -> NotificationService:
        s = p.settings
        return NotificationService(
            db=p.db("notifications"),
            users=users_client(p),
            catalog=catalog_client(p) if p.reaches("catalog") else None,
            mailer=p.mailer,
            sms=sms_sender(s),
            clock=p.clock,
            max_attempts=s.notification_max_attempts,
            retry_base_seconds=s.notification_retry_base_seconds,
        )

    return platform.service("notifications", build)


def notification_jobs(platform: Platform) -> list[Job]:
    async def retry() -> int:
        return await notification_service(platform).retry_due()

    return [
        Job(
            name="notifications.retry",
            interval_seconds=platform.settings.notification_retry_interval_seconds,
            run=retry,
        )
    ]
