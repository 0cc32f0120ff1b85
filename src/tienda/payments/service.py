"""Use cases of payments: open a payment for an order at its gateway, take the gateway's
webhooks, refund, and give up on a payment that never came.

Gateways are never called inside a transaction (DESIGN.md 2): a payment's row is written
after its checkout is opened, and a refund is recorded PENDING before the gateway is asked
and marked SUCCEEDED after, so a crash in between leaves a refund the worker sends again
(with the same refund id, which the gateways take as an idempotency key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError

from tienda.payments import events, repository
from tienda.payments.domain import (
    CAPTURED_STATES,
    PaymentStatus,
    after_refunds,
    can_capture,
    can_fail,
    refundable,
)
from tienda.payments.errors import (
    GatewayUnavailable,
    InvalidWebhookSignature,
    NotRefundable,
    PaymentMismatch,
    PaymentNotFound,
    ProviderNotFound,
    RefundTooLarge,
)
from tienda.payments.models import PAYLOAD_LIMIT, Payment, PaymentEvent, Refund
from tienda.payments.providers.base import (
    GatewayError,
    InvalidSignature,
    PaymentProvider,
    PaymentRequest,
    WebhookEvent,
    WebhookKind,
)
from tienda.payments.providers.sandbox import SandboxProvider, event_body
from tienda.platform.clock import Clock
from tienda.platform.db import Database, UnitOfWork
from tienda.platform.errors import ErrorDetail
from tienda.platform.events import outbox_row
from tienda.platform.ids import new_public_id
from tienda.platform.observability import get_logger

log = get_logger("tienda.payments")


@dataclass(frozen=True)
class WebhookOutcome:
    outcome: str
    """What the delivery did: CAPTURED, FAILED, REFUNDED, DUPLICATE, UNMATCHED, AMOUNT_MISMATCH, ..."""
    payment_id: str | None


@dataclass
class PaymentService:
    db: Database
    providers: Mapping[str, PaymentProvider]
    default_provider: str
    clock: Clock

    def provider(self, name: str) -> PaymentProvider:
        try:
            return self.providers[name]
        except KeyError:
            raise ProviderNotFound(f"No payment provider {name!r} here; known: {', '.join(self.providers)}") from None

    # -- opening a payment -------------------------------------------------------------------

    async def initiate(
        self,
        *,
        order_id: str,
        user_id: str,
        amount: Decimal,
        currency: str,
        provider: str | None = None,
        description: str | None = None,
        customer_email: str | None = None,
    ) -> Payment:
        """The order's payment, opened at the gateway; the same one when asked again."""
        name = provider or self.default_provider
        gateway = self.provider(name)
        if gateway.opens_remotely and await repository.has_payment(self.db, order_id):
            async with self.db.reader() as uow:
                existing = await repository.payment_of_order(uow.session, order_id, refunds=False)
            if existing is not None:
                return self._same(existing, amount, currency)
        payment_id = new_public_id("pay")
        now = self.clock.now()
        payment = Payment(
            payment_id=payment_id,
            order_id=order_id,
            user_id=user_id,
            payment_provider=name,
            amount=amount,
            currency=currency,
            status=PaymentStatus.PENDING.value,
            refunded_amount=Decimal("0.00"),
            created_at=now,
            updated_at=now,
        )
        try:
            opened = await gateway.create_checkout(
                PaymentRequest(
                    payment_id=payment_id,
                    order_id=order_id,
                    amount=amount,
                    currency=currency,
                    description=description or f"Order {order_id}",
                    customer_email=customer_email,
                )
            )
            payment.provider_reference, payment.payment_url = opened.reference, opened.url
        except GatewayError as exc:
            log.warning("payment_gateway_error", provider=name, order_id=order_id, error=str(exc))
            payment.status, payment.failure_reason = PaymentStatus.FAILED.value, "GATEWAY_ERROR"
        failed = payment.status == PaymentStatus.FAILED
        try:
            # An open payment is one INSERT, committed as it runs; a failed one comes with its event.
            if failed:
                async with self.db.uow() as uow:
                    uow.session.add(payment)
                    await uow.session.flush()
                    await uow.publish(events.PAYMENT_FAILED, events.payment_payload(payment), at=now)
                    await uow.commit()
            else:
                await repository.add_opened(self.db, payment)
        except IntegrityError:
            # The order has its payment already (a concurrent request opened it first, or an
            # earlier one did, unasked for a gateway that opens locally): that one is the
            # payment (the checkout opened here is never shown to anyone, so never paid).
            async with self.db.reader() as uow:
                existing = await repository.payment_of_order(uow.session, order_id)
            if existing is None:
                raise
            return self._same(existing, amount, currency)
        if failed:
            raise GatewayUnavailable()
        return payment

    @staticmethod
    def _same(payment: Payment, amount: Decimal, currency: str) -> Payment:
        if payment.amount != amount or payment.currency != currency:
            raise PaymentMismatch(
                details=[
                    ErrorDetail(
                        field="body.amount", message=f"the order's payment is {payment.amount} {payment.currency}"
                    )
                ]
            )
        return payment

    async def get(self, uow: UnitOfWork, *, payment_id: str) -> Payment:
        payment = await repository.payment(uow.session, payment_id)
        if payment is None:
            raise PaymentNotFound()
        return payment

    async def of_order(self, uow: UnitOfWork, *, order_id: str) -> Payment | None:
        return await repository.payment_of_order(uow.session, order_id)

    # -- webhooks ----------------------------------------------------------------------------

    async def webhook(self, provider_name: str, headers: Mapping[str, str], body: bytes) -> WebhookOutcome:
        """Verify, record once per gateway event id, and apply a gateway's news."""
        gateway = self.provider(provider_name)
        try:
            event = gateway.verify_webhook({k.lower(): v for k, v in headers.items()}, body)
        except InvalidSignature as exc:
            raise InvalidWebhookSignature(f"The webhook signature does not verify: {exc}") from exc
        if event.kind is WebhookKind.CAPTURED and event.reference and self.db.multi_table_statements:
            captured = await self._capture_at_once(provider_name, event, body)
            if captured is not None:
                return captured
        payment_id: str | None = None
        try:
            async with self.db.uow() as uow:
                payment = await self._payment_named(uow, provider_name, event)
                payment_id = payment.payment_id if payment else None
                outcome = await self._apply(uow, payment, event) if payment is not None else "UNMATCHED"
                record = _record_of(provider_name, event, body, self.clock.now())
                uow.session.add(PaymentEvent(**record, payment_id=payment_id, outcome=outcome))
                # An event recorded before (the unique provider and event id) fails here, and
                # what it would have changed rolls back with it: a delivery applies once. Under
                # the payment's lock, a concurrent delivery of it has committed by now.
                await uow.session.flush()
                await uow.commit()
        except IntegrityError:
            return WebhookOutcome("DUPLICATE", payment_id)
        if outcome in ("UNMATCHED", "AMOUNT_MISMATCH"):
            log.warning("payment_webhook_not_applied", provider=provider_name, event_id=event.event_id, outcome=outcome)
        return WebhookOutcome(outcome, payment_id)

    async def _capture_at_once(self, provider: str, event: WebhookEvent, body: bytes) -> WebhookOutcome | None:
        """The common capture (a PENDING payment, the amount and currency it asked for) in one
        statement (`repository.capture_publishing`) after one plain read, where the unit of work
        below took seven round trips and the ORM. None when it is anything else, or when the
        payment moved between the read and the statement: the unit of work then decides, under
        the payment's lock, as for every other event."""
        assert event.reference is not None
        row = await repository.capturable(self.db, provider, event.reference)
        if row is None or row["status"] != PaymentStatus.PENDING.value:
            return None
        if event.amount != row["amount"] or (event.currency or "").upper() != row["currency"]:
            return None
        now = self.clock.now()
        captured = Payment(**row | {"status": PaymentStatus.CAPTURED.value, "payment_provider": provider})
        payload = events.payment_payload(captured) | {"late": False}
        try:
            done = await repository.capture_publishing(
                self.db,
                captured.payment_id,
                transaction_id=event.transaction_id or None,
                at=now,
                record=_record_of(provider, event, body, now),
                event=outbox_row(events.PAYMENT_CAPTURED, payload, source=self.db.module, at=now),
            )
        except IntegrityError:  # this gateway event was recorded before: nothing was written
            return WebhookOutcome("DUPLICATE", captured.payment_id)
        if not done:
            return None
        self.db.published()
        return WebhookOutcome("CAPTURED", captured.payment_id)

    @staticmethod
    async def _payment_named(uow: UnitOfWork, provider: str, event: WebhookEvent) -> Payment | None:
        refunds = event.kind is WebhookKind.REFUNDED
        if event.reference:
            found = await repository.payment_by_reference(
                uow.session, provider, event.reference, for_update=True, refunds=refunds
            )
            if found is not None:
                return found
        if event.payment_id:
            found = await repository.payment(uow.session, event.payment_id, for_update=True, refunds=refunds)
            if found is not None and found.payment_provider == provider:
                return found
        return None

    async def _apply(self, uow: UnitOfWork, payment: Payment, event: WebhookEvent) -> str:
        status = PaymentStatus(payment.status)
        now = self.clock.now()
        if event.kind is WebhookKind.CAPTURED:
            if event.amount != payment.amount or (event.currency or "").upper() != payment.currency:
                return "AMOUNT_MISMATCH"
            if not can_capture(status):
                return "ALREADY_CAPTURED"
            payment.status = PaymentStatus.CAPTURED.value
            payment.provider_transaction_id = event.transaction_id or payment.provider_transaction_id
            payment.captured_at = payment.updated_at = now
            late = status is PaymentStatus.FAILED
            await uow.publish(events.PAYMENT_CAPTURED, events.payment_payload(payment) | {"late": late}, at=now)
            return "CAPTURED_LATE" if late else "CAPTURED"
        if event.kind is WebhookKind.FAILED:
            if not can_fail(status):
                return "NOT_DOWNGRADED" if status in CAPTURED_STATES else "ALREADY_FAILED"
            payment.status, payment.updated_at = PaymentStatus.FAILED.value, now
            payment.failure_reason = (event.reason or "DECLINED")[:255]
            await uow.publish(events.PAYMENT_FAILED, events.payment_payload(payment), at=now)
            return "FAILED"
        if event.kind is WebhookKind.REFUNDED:
            return await self._refunded_at_gateway(uow, payment, event)
        return "IGNORED"

    async def _refunded_at_gateway(self, uow: UnitOfWork, payment: Payment, event: WebhookEvent) -> str:
        """A refund the gateway reports: one of ours confirmed, or one made on its dashboard."""
        if event.refund_reference and any(r.provider_refund_id == event.refund_reference for r in payment.refunds):
            return "KNOWN_REFUND"
        if PaymentStatus(payment.status) not in CAPTURED_STATES:
            return "IGNORED"
        now = self.clock.now()
        reported = event.amount
        if reported is None and event.refunded_total is not None:
            reported = event.refunded_total - payment.refunded_amount
            if reported <= 0:
                return "KNOWN_REFUND"
        ours = next(
            (r for r in payment.refunds if r.status == "PENDING" and (reported is None or r.amount == reported)),
            None,
        )
        if ours is not None:  # ours, reported before our own call returned
            ours.provider_refund_id = event.refund_reference or ours.provider_refund_id
            await self._refund_done(uow, payment, ours)
            return "REFUNDED"
        pending = sum((r.amount for r in payment.refunds if r.status == "PENDING"), Decimal("0.00"))
        amount = min(reported or payment.amount, refundable(payment.amount, payment.refunded_amount, pending))
        if amount <= 0:
            return "IGNORED"
        refund = Refund(
            refund_id=new_public_id("rf"),
            payment=payment,
            request_key=f"gateway:{event.refund_reference or event.event_id}"[:255],
            amount=amount,
            status="PENDING",
            provider_refund_id=event.refund_reference,
            reason="Refunded at the gateway",
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(refund)
        await self._refund_done(uow, payment, refund)
        return "REFUNDED"

    async def _refund_done(self, uow: UnitOfWork, payment: Payment, refund: Refund) -> None:
        refund.status, refund.updated_at = "SUCCEEDED", self.clock.now()
        payment.refunded_amount += refund.amount
        payment.status, payment.updated_at = (
            after_refunds(payment.amount, payment.refunded_amount).value,
            refund.updated_at,
        )
        await uow.publish(
            events.PAYMENT_REFUNDED,
            events.payment_payload(payment) | {"refundId": refund.refund_id, "refundAmount": str(refund.amount)},
            at=refund.updated_at,
        )

    # -- refunds -----------------------------------------------------------------------------

    async def refund(self, *, order_id: str, amount: Decimal | None, request_key: str, reason: str | None) -> Refund:
        """Refund `amount` of the order's payment (None: all that is left). The same
        `request_key` asked again returns the first refund and refunds nothing more."""
        async with self.db.uow() as uow:
            payment = await repository.payment_of_order(uow.session, order_id, for_update=True)
            if payment is None:
                raise PaymentNotFound("This order has no payment")
            refund = next((r for r in payment.refunds if r.request_key == request_key), None)
            if refund is None:
                if PaymentStatus(payment.status) not in CAPTURED_STATES:
                    raise NotRefundable()
                pending = sum((r.amount for r in payment.refunds if r.status == "PENDING"), Decimal("0.00"))
                left = refundable(payment.amount, payment.refunded_amount, pending)
                wanted = left if amount is None else amount
                if wanted <= 0:
                    raise NotRefundable()
                if wanted > left:
                    raise RefundTooLarge(
                        details=[ErrorDetail(field="body.amount", message=f"at most {left} can be refunded")]
                    )
                now = self.clock.now()
                refund = Refund(
                    refund_id=new_public_id("rf"),
                    payment=payment,
                    request_key=request_key[:255],
                    amount=wanted,
                    status="PENDING",
                    reason=reason[:255] if reason else None,
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
                uow.session.add(refund)
                await uow.commit()
            if refund.status != "PENDING":
                return refund
            refund_id = refund.refund_id
        return await self.send_refund(refund_id)

    async def send_refund(self, refund_id: str) -> Refund:
        """Ask the gateway for a PENDING refund and record what it said."""
        async with self.db.reader() as uow:
            refund = await repository.refund(uow.session, refund_id)
        assert refund is not None
        payment = refund.payment
        try:
            reference = await self.provider(payment.payment_provider).refund(
                transaction_id=payment.provider_transaction_id or payment.provider_reference or "",
                amount=refund.amount,
                currency=payment.currency,
                refund_id=refund.refund_id,
            )
        except GatewayError as exc:
            async with self.db.uow() as uow:
                row = await repository.refund(uow.session, refund_id, for_update=True)
                assert row is not None
                row.attempts, row.last_error, row.updated_at = row.attempts + 1, str(exc)[:2000], self.clock.now()
                await uow.commit()
            raise GatewayUnavailable() from exc
        async with self.db.uow() as uow:
            locked = await repository.payment(uow.session, payment.payment_id, for_update=True)
            assert locked is not None
            row = next(r for r in locked.refunds if r.refund_id == refund_id)
            if row.status == "PENDING":
                row.provider_refund_id, row.attempts = reference, row.attempts + 1
                await self._refund_done(uow, locked, row)
                await uow.commit()
            return row

    async def retry_refunds(self, *, stalled_after: timedelta = timedelta(seconds=60), limit: int = 50) -> int:
        """The worker's job: refunds left PENDING by a crash or a gateway that did not answer."""
        async with self.db.uow() as uow:
            now = self.clock.now()
            due = await repository.refunds_pending(uow.session, before=now - stalled_after, limit=limit)
            await repository.touch_refunds(uow.session, due, now)  # a lease: other workers skip them a while
            await uow.commit()
        sent = 0
        for refund_id in due:
            try:
                await self.send_refund(refund_id)
                sent += 1
            except GatewayUnavailable:
                continue
        return sent

    # -- giving up ---------------------------------------------------------------------------

    async def expire(self, *, order_id: str) -> PaymentStatus | None:
        """The order stopped waiting: a payment still PENDING is FAILED (EXPIRED). Its status
        after; a capture that won the race stays captured (the order refunds it)."""
        async with self.db.uow() as uow:
            payment = await repository.payment_of_order(uow.session, order_id, for_update=True, refunds=False)
            if payment is None:
                return None
            if can_fail(PaymentStatus(payment.status)):
                now = self.clock.now()
                payment.status, payment.failure_reason, payment.updated_at = PaymentStatus.FAILED.value, "EXPIRED", now
                await uow.publish(events.PAYMENT_FAILED, events.payment_payload(payment), at=now)
                await uow.commit()
            return PaymentStatus(payment.status)

    # -- the sandbox gateway's page ----------------------------------------------------------

    async def sandbox_decide(self, *, payment_id: str, approve: bool) -> WebhookOutcome:
        """What the sandbox's Approve / Decline buttons do: the gateway sends its signed webhook,
        which goes through the same verification as any other."""
        gateway = self.provider("sandbox")
        assert isinstance(gateway, SandboxProvider)
        async with self.db.reader() as uow:
            payment = await self.get(uow, payment_id=payment_id)
        if payment.payment_provider != "sandbox" or payment.provider_reference is None:
            raise PaymentNotFound("No such sandbox payment")
        body = event_body(
            event_type="payment.captured" if approve else "payment.failed",
            payment_id=payment.payment_id,
            reference=payment.provider_reference,
            amount=payment.amount,
            currency=payment.currency,
            created=int(self.clock.now().timestamp()),
            reason=None if approve else "DECLINED",
        )
        return await self.webhook("sandbox", gateway.signed(body), body)


def _record_of(provider: str, event: WebhookEvent, body: bytes, at: datetime) -> dict[str, Any]:
    """The columns of a gateway event's record (`PaymentEvent`) but its payment and outcome."""
    return {
        "provider": provider,
        "event_id": event.event_id,
        "event_type": event.raw_type[:100],
        "payload": body.decode("utf-8", "replace")[:PAYLOAD_LIMIT],
        "received_at": at,
    }
