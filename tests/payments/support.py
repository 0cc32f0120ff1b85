"""Playing the sandbox gateway in tests: webhooks signed with the shop's sandbox secret, exactly
as the sandbox page (or any real gateway) sends them, and what payments stores."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from tests.conftest import Shop
from tienda.payments.models import Payment, PaymentEvent, Refund
from tienda.payments.providers.sandbox import SIGNATURE_HEADER, event_body, sign

WEBHOOK = "/api/v1/payments/webhook"


async def payment_row(shop: Shop, payment_id: str) -> dict[str, Any]:
    async with shop.platform.db("payments").engine.connect() as conn:
        row = (await conn.execute(select(Payment.__table__).where(Payment.payment_id == payment_id))).one()
    return dict(row._mapping)


async def payment_events(shop: Shop) -> list[tuple[str, str]]:
    """(event id, outcome) of every webhook delivery recorded, oldest first."""
    async with shop.platform.db("payments").engine.connect() as conn:
        rows = await conn.execute(select(PaymentEvent.event_id, PaymentEvent.outcome).order_by(PaymentEvent.id))
    return [(r.event_id, r.outcome) for r in rows]


async def refunds(shop: Shop) -> list[tuple[Decimal, str, str]]:
    """(amount, status, request key) of every refund, oldest first."""
    async with shop.platform.db("payments").engine.connect() as conn:
        rows = await conn.execute(select(Refund.amount, Refund.status, Refund.request_key).order_by(Refund.id))
    return [(Decimal(r.amount), r.status, r.request_key) for r in rows]


def signed_event(
    shop: Shop,
    payment: dict[str, Any],
    event_type: str = "payment.captured",
    *,
    event_id: str | None = None,
    amount: Decimal | None = None,
    currency: str | None = None,
    secret: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A sandbox webhook about `payment` (a `payment_row`), and its signed headers."""
    created = int(shop.clock.now().timestamp())
    body = event_body(
        event_type=event_type,
        payment_id=payment["payment_id"],
        reference=payment["provider_reference"],
        amount=amount if amount is not None else Decimal(payment["amount"]),
        currency=currency or payment["currency"],
        created=created,
        reason=None if event_type == "payment.captured" else "DECLINED",
        event_id=event_id,
    )
    signature = sign(secret or shop.settings.sandbox_secret(), body, timestamp=created)
    return body, {SIGNATURE_HEADER: signature, "content-type": "application/json"}


async def deliver(shop: Shop, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """The gateway's POST, then the events it caused, relayed."""
    response = await shop.client.post(WEBHOOK, content=body, headers=headers)
    await shop.relay()
    return response
