"""Every query of payments."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Insert, Select, String, Table, bindparam, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from tienda.payments.domain import PaymentStatus
from tienda.payments.models import OUTBOX, Payment, PaymentEvent, Refund
from tienda.platform.db import Database, lock_matching
from tienda.platform.events import event_params

_BY = {
    "payment_id": (Payment.payment_id == bindparam("payment_id"),),
    "order_id": (Payment.order_id == bindparam("order_id"),),
    "reference": (
        Payment.payment_provider == bindparam("provider"),
        Payment.provider_reference == bindparam("reference"),
    ),
}


@cache
def _one_by(key: str, for_update: bool, refunds: bool) -> Select[Payment]:
    """A payment found by `key` (see _BY), built once per kind of lookup with its values bound
    at execution: building it with its options and cache key on every call cost as much CPU
    as running it (a checkout looks its payment up three times)."""
    query = select(Payment).where(*_BY[key])
    if refunds:
        query = query.options(selectinload(Payment.refunds))
    if for_update:
        query = query.with_for_update(of=Payment)
    return query.execution_options(populate_existing=True)


async def _one(
    session: AsyncSession, key: str, values: dict[str, str], *, for_update: bool, refunds: bool
) -> Payment | None:
    found: Payment | None = await session.scalar(_one_by(key, for_update, refunds), values)
    return found


_OPENED = (
    "payment_id",
    "order_id",
    "user_id",
    "payment_provider",
    "provider_reference",
    "amount",
    "currency",
    "status",
    "refunded_amount",
    "payment_url",
    "created_at",
    "updated_at",
)
"""The columns an opened payment sets; the others start empty."""


@cache
def _open() -> Insert:
    table = cast(Table, Payment.__table__)
    return insert(table).values({table.c[name]: bindparam(f"{name}_") for name in _OPENED})


async def add_opened(db: Database, payment: Payment) -> None:
    """The payment just opened, stored in one INSERT that commits as it runs (`Database.run`):
    no session, no transaction. A second payment for the order is an `IntegrityError`."""
    await db.run(_open(), {f"{name}_": getattr(payment, name) for name in _OPENED})


_OF_ORDER = select(Payment.id).where(Payment.order_id == bindparam("order_id"))


async def has_payment(db: Database, order_id: str) -> bool:
    """Whether the order has a payment: one plain-row read (`Database.rows`), which opening
    a payment asks first and nearly always hears no."""
    return bool(await db.rows(_OF_ORDER, {"order_id": order_id}))


async def payment(
    session: AsyncSession, payment_id: str, *, for_update: bool = False, refunds: bool = True
) -> Payment | None:
    """The payment, with its refunds unless `refunds=False` (then they must not be touched)."""
    return await _one(session, "payment_id", {"payment_id": payment_id}, for_update=for_update, refunds=refunds)


async def payment_of_order(
    session: AsyncSession, order_id: str, *, for_update: bool = False, refunds: bool = True
) -> Payment | None:
    return await _one(session, "order_id", {"order_id": order_id}, for_update=for_update, refunds=refunds)


async def payment_by_reference(
    session: AsyncSession, provider: str, reference: str, *, for_update: bool = False, refunds: bool = True
) -> Payment | None:
    values = {"provider": provider, "reference": reference}
    return await _one(session, "reference", values, for_update=for_update, refunds=refunds)


async def refunds_pending(session: AsyncSession, *, before: datetime, limit: int) -> list[str]:
    """Refunds asked for but not known to be done, untouched since `before` (a crash, a gateway
    that did not answer); the ones another worker holds are skipped."""
    stalled = (Refund.status == "PENDING", Refund.updated_at < before)
    rows = await lock_matching(session, Refund, stalled, order_by=(Refund.id,), limit=limit)
    return [row.refund_id for row in rows]


async def refund(session: AsyncSession, refund_id: str, *, for_update: bool = False) -> Refund | None:
    query = select(Refund).where(Refund.refund_id == refund_id).options(selectinload(Refund.payment))
    if for_update:
        query = query.with_for_update(of=Refund)
    found: Refund | None = await session.scalar(query.execution_options(populate_existing=True))
    return found


async def touch_refunds(session: AsyncSession, refund_ids: list[str], now: datetime) -> None:
    if refund_ids:
        await session.execute(update(Refund).where(Refund.refund_id.in_(refund_ids)).values(updated_at=now))


# -- capturing in one statement ----------------------------------------------------------

CAPTURE_READ = (
    "payment_id",
    "order_id",
    "user_id",
    "status",
    "amount",
    "currency",
    "refunded_amount",
    "failure_reason",
)
"""The columns `capturable` reads: those a capture checks and its event tells."""

_CAPTURABLE = select(*(cast(Table, Payment.__table__).c[name] for name in CAPTURE_READ)).where(*_BY["reference"])


async def capturable(db: Database, provider: str, reference: str) -> dict[str, Any] | None:
    """The payment of this gateway reference as plain values (`CAPTURE_READ`), read without a
    session or a lock: what `capture_publishing` is tried on."""
    rows = await db.rows(_CAPTURABLE, {"provider": provider, "reference": reference})
    return dict(zip(CAPTURE_READ, rows[0], strict=True)) if rows else None


async def capture_publishing(
    db: Database,
    payment_id: str,
    *,
    transaction_id: str | None,
    at: datetime,
    record: dict[str, Any],
    event: dict[str, Any],
) -> bool:
    """The PENDING payment CAPTURED, the gateway's event recorded (`record`: the columns of a
    `PaymentEvent` but its payment and outcome) and `event` (an `outbox_row`) published, in one
    statement that commits as it runs (`Database.multi_table_statements`), or nothing at all if
    the payment is no longer PENDING. A gateway event recorded before is an IntegrityError, with
    nothing written. Whether it captured."""
    params = {"payment_id_": payment_id, "transaction_id_": transaction_id, "at_": at}
    params |= {f"r_{name}": value for name, value in record.items()}
    return bool(await db.rows(_capture_publishing(), params | event_params(event)))


_RECORD = ("provider", "event_id", "event_type", "payload", "received_at")


@cache
def _capture_publishing() -> Select[tuple[int]]:
    payments = cast(Table, Payment.__table__)
    records = cast(Table, PaymentEvent.__table__)
    captured = (
        update(payments)
        .where(payments.c.payment_id == bindparam("payment_id_"), payments.c.status == PaymentStatus.PENDING.value)
        .values(
            status=PaymentStatus.CAPTURED.value,
            provider_transaction_id=func.coalesce(
                bindparam("transaction_id_", type_=String), payments.c.provider_transaction_id
            ),
            captured_at=bindparam("at_"),
            updated_at=bindparam("at_"),
        )
        .returning(payments.c.id, payments.c.payment_id)
        .cte("c")
    )
    record = select(
        *(bindparam(f"r_{name}", type_=records.c[name].type) for name in _RECORD),
        captured.c.payment_id,
        literal("CAPTURED", String),
    ).select_from(captured)
    recorded = insert(records).from_select([*_RECORD, "payment_id", "outcome"], record)
    return select(captured.c.id).add_cte(recorded.cte("r"), OUTBOX.add_event_for_each(captured).cte("e"))
