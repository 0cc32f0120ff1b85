"""Helpers for the notification tests: a real SMTP server, events published through a
module's unit of work, the retry job, and what the notifications module stored."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select, update

from tests.conftest import Shop, shop_settings
from tienda.app import ALL_MODULES, create_app
from tienda.notifications.models import Notification
from tienda.platform.auth import Role
from tienda.platform.runtime import Platform

NOTIFICATIONS = "/api/v1/notifications"
SEND = f"{NOTIFICATIONS}/send"
PHONE = "+919876543210"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content())  # type: ignore[attr-defined]


@dataclass
class SmtpServer:
    """aiosmtpd on loopback, keeping every message it accepts."""

    port: int
    received: list[Received] = field(default_factory=list)
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd calls it so)
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self._lock:
            self.received.append(
                Received(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], message)  # type: ignore[arg-type]
            )
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def subjects(self) -> list[str]:
        return [str(r.message["Subject"]) for r in self.received]

    def about(self, words: str) -> list[Received]:
        """The messages whose subject contains `words`."""
        return [r for r in self.received if words in str(r.message["Subject"])]


@asynccontextmanager
async def rebuilt(shop: Shop, **extra: Any) -> AsyncIterator[Shop]:
    """The shop on the same database and clock, built again with these settings on top."""
    assert shop.settings.database_url is not None
    settings = shop_settings(shop.data_dir, shop.settings.database_url, **extra)
    platform = Platform.build(settings, ALL_MODULES, clock=shop.clock)
    transport = httpx.ASGITransport(app=create_app(settings, platform=platform), client=("203.0.113.9", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            yield Shop(client=client, platform=platform, clock=shop.clock, data_dir=shop.data_dir, settings=settings)
    finally:
        await platform.close()


def service_auth(shop: Shop, subject: str = "orders") -> dict[str, str]:
    return {"Authorization": f"Bearer {shop.platform.tokens.issue(subject, Role.SERVICE).token}"}


def order_payload(user_id: str, **extra: Any) -> dict[str, Any]:
    """An order event's payload, as orders publishes it: 2 T-shirts and a mug, COD."""
    return {
        "orderId": "ord_20261125_0042",
        "userId": user_id,
        "status": "CONFIRMED",
        "paymentStatus": "PENDING",
        "paymentMethod": "COD",
        "currency": "INR",
        "totalAmount": "1473.23",
        "trackingNumber": None,
        "items": [
            {
                "productId": "p_tshirt",
                "variantId": "v_red_m",
                "sku": "TSHIRT-RED-M",
                "name": "Men's T-Shirt",
                "quantity": 2,
                "unitPrice": "499.00",
            },
            {
                "productId": "p_mug",
                "variantId": None,
                "sku": None,
                "name": "Mug <Classic>",
                "quantity": 1,
                "unitPrice": "250.50",
            },
        ],
        **extra,
    }


async def publish(shop: Shop, module: str, event_type: str, payload: dict[str, Any]) -> str:
    """Publishes an event through `module`'s unit of work (its outbox, committed) and relays
    it; returns the event id."""
    async with shop.platform.db(module).uow() as uow:
        event_id = await uow.publish(event_type, payload, at=shop.clock.now())
        await uow.commit()
    await shop.relay()
    return event_id


async def redeliver(shop: Shop, module: str, event_id: str) -> int:
    """Relays an already delivered event again, as a relay that died before recording it would."""
    table = shop.platform.db(module).outbox.outbox
    async with shop.platform.db(module).engine.begin() as conn:
        await conn.execute(update(table).where(table.c.event_id == event_id).values(published_at=None))
    return await shop.relay()


async def retry_job(shop: Shop) -> int:
    """One tick of the `notifications.retry` job, as the worker runs it."""
    [job] = [job for job in shop.platform.jobs.jobs if job.name == "notifications.retry"]
    return await job.run()


async def stored(shop: Shop) -> list[dict[str, Any]]:
    """Every notification row, oldest first."""
    async with shop.platform.db("notifications").engine.connect() as conn:
        rows = await conn.execute(select(Notification.__table__).order_by(Notification.id))
        return [dict(r._mapping) for r in rows]


async def processed(shop: Shop) -> list[tuple[str, str]]:
    table = shop.platform.db("notifications").outbox.processed
    async with shop.platform.db("notifications").engine.connect() as conn:
        rows = await conn.execute(select(table.c.consumer, table.c.event_id).order_by(table.c.consumer))
        return [(str(c), str(e)) for c, e in rows]
