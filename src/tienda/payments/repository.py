"""Every query of payments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from tienda.payments.models import Payment, PaymentEvent, Refund


async def _one(session: AsyncSession, query: Select[Any], for_update: bool, refunds: bool = True) -> Payment | None:
    if refunds:
        query = query.options(selectinload(Payment.refunds))
    if for_update:
        query = query.with_for_update(of=Payment)
    found: Payment | None = await session.scalar(query.execution_options(populate_existing=True))
    return found


async def payment(
    session: AsyncSession, payment_id: str, *, for_update: bool = False, refunds: bool = True
) -> Payment | None:
    """The payment, with its refunds unless `refunds=False` (then they must not be touched)."""
    return await _one(session, select(Payment).where(Payment.payment_id == payment_id), for_update, refunds)


async def payment_of_order(
    session: AsyncSession, order_id: str, *, for_update: bool = False, refunds: bool = True
) -> Payment | None:
    return await _one(session, select(Payment).where(Payment.order_id == order_id), for_update, refunds)


async def payment_by_reference(
    session: AsyncSession, provider: str, reference: str, *, for_update: bool = False, refunds: bool = True
) -> Payment | None:
    query = select(Payment).where(Payment.payment_provider == provider, Payment.provider_reference == reference)
    return await _one(session, query, for_update, refunds)


async def event_seen(session: AsyncSession, provider: str, event_id: str) -> bool:
    found = await session.scalar(
        select(PaymentEvent.id).where(PaymentEvent.provider == provider, PaymentEvent.event_id == event_id)
    )
    return found is not None


async def refunds_pending(session: AsyncSession, *, before: datetime, limit: int) -> list[str]:
    """Refunds asked for but not known to be done, untouched since `before` (a crash, a gateway
    that did not answer); the ones another worker holds are skipped."""
    rows = await session.scalars(
        select(Refund.refund_id)
        .where(Refund.status == "PENDING", Refund.updated_at < before)
        .order_by(Refund.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(rows)


async def refund(session: AsyncSession, refund_id: str, *, for_update: bool = False) -> Refund | None:
    query = select(Refund).where(Refund.refund_id == refund_id).options(selectinload(Refund.payment))
    if for_update:
        query = query.with_for_update(of=Refund)
    found: Refund | None = await session.scalar(query.execution_options(populate_existing=True))
    return found


async def touch_refunds(session: AsyncSession, refund_ids: list[str], now: datetime) -> None:
    if refund_ids:
        await session.execute(update(Refund).where(Refund.refund_id.in_(refund_ids)).values(updated_at=now))
