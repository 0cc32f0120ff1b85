"""Use cases of notifications: create them (from an event or a request) in the caller's unit
of work, then send them outside any transaction, and try failed ones again with backoff.

A send is an attempt on a claimed row: the claim (a short transaction) counts the attempt and
leases the row, so two senders never send the same one; the outcome is recorded in another
short transaction. A sender that dies mid-way leaves a lease that runs out, and the row is
sent again by the retry job: delivery is at least once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jinja2 import TemplateError
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from tienda.catalog.client import CatalogClient
from tienda.notifications import repository
from tienda.notifications.domain import (
    ADMIN_TYPES,
    SMS_TYPES,
    Channel,
    LowStockPayload,
    NotificationType,
    Payload,
    Status,
    channels_for,
    dedup_key,
    masked,
    parse_payload,
    retry_delay,
    stored_payload,
)
from tienda.notifications.errors import (
    ChannelNotOffered,
    NoAdmins,
    NoPhoneNumber,
    NotificationNotFound,
    UserNotFound,
    UserRequired,
)
from tienda.notifications.models import Notification
from tienda.notifications.rendering import render
from tienda.notifications.schemas import NotificationRead
from tienda.notifications.sms import SmsSender
from tienda.platform.clock import Clock
from tienda.platform.db import Database, UnitOfWork
from tienda.platform.errors import ErrorDetail, ValidationFailed
from tienda.platform.ids import new_public_id
from tienda.platform.mail import Mailer
from tienda.platform.observability import get_logger
from tienda.platform.pagination import Page
from tienda.users.client import UserInfo, UsersClient

log = get_logger("tienda.notifications")


@dataclass(frozen=True)
class Recipient:
    user_id: str | None
    email: str
    phone: str | None
    full_name: str | None

    @classmethod
    def of(cls, user: UserInfo) -> Recipient:
        return cls(user_id=user.user_id, email=user.email, phone=user.phone, full_name=user.full_name)

    def address(self, channel: Channel) -> str | None:
        return self.email if channel is Channel.EMAIL else self.phone


@dataclass(frozen=True)
class Accepted:
    """Notifications a request made (or had made before, for a replayed Idempotency-Key)."""

    ids: list[int]
    notifications: list[NotificationRead]


@dataclass(frozen=True)
class Claimed:
    """One attempt at one notification, as claimed (plain values: no session needed)."""

    id: int
    notification_id: str
    attempt: int
    kind: NotificationType
    channel: Channel
    recipient: str
    payload: dict[str, Any]


def _claimed(row: Notification) -> Claimed:
    return _claimed_of(row.id, {name: getattr(row, name) for name in _CLAIMED_COLUMNS})


_CLAIMED_COLUMNS = ("notification_id", "attempts", "type", "channel", "recipient", "payload")


def _claimed_of(row_id: int, values: Mapping[str, Any]) -> Claimed:
    """The attempt at a notification of these column values (`_CLAIMED_COLUMNS` at least)."""
    return Claimed(
        id=row_id,
        notification_id=values["notification_id"],
        attempt=values["attempts"],
        kind=NotificationType(values["type"]),
        channel=Channel(values["channel"]),
        recipient=values["recipient"],
        payload=dict(values["payload"]),
    )


class NotificationService:
    def __init__(
        self,
        *,
        db: Database,
        users: UsersClient,
        catalog: CatalogClient | None,
        mailer: Mailer,
        sms: SmsSender,
        clock: Clock,
        max_attempts: int,
        retry_base_seconds: float,
        lease: timedelta = timedelta(minutes=5),
        batch_size: int = 50,
    ) -> None:
        self.db = db
        self.users = users
        self.catalog = catalog
        self.mailer = mailer
        self.sms = sms
        self.clock = clock
        self.max_attempts = max_attempts
        self.retry_base_seconds = retry_base_seconds
        self.lease = lease
        self.batch_size = batch_size

    # -- creating ---------------------------------------------------------------------------

    async def request(
        self,
        uow: UnitOfWork,
        *,
        kind: NotificationType,
        user_id: str | None,
        payload: dict[str, Any],
        channel: Channel | None,
        source: str,
    ) -> Accepted:
        """A notification asked for through the API: bad input is refused (400), an unknown
        user is 404. The caller commits, then sends them (`deliver`)."""
        try:
            parsed = parse_payload(kind, payload)
        except ValidationError as exc:
            raise ValidationFailed(
                details=[
                    ErrorDetail(
                        field=".".join(["body", "payload", *(str(part) for part in error["loc"])]),
                        message=error["msg"],
                        type=error["type"],
                    )
                    for error in exc.errors(include_url=False)
                ]
            ) from exc
        if channel is Channel.SMS and kind not in SMS_TYPES:
            raise ChannelNotOffered(
                f"{kind.value} is not sent by SMS", details=[ErrorDetail(field="body.channel", message="not offered")]
            )
        if user_id is None:
            if kind not in ADMIN_TYPES:
                raise UserRequired(details=[ErrorDetail(field="body.userId", message="Field required", type="missing")])
            recipients = await self._admins()
            if not recipients:
                raise NoAdmins()
        else:
            user = await self.users.get_user(user_id)
            if user is None:
                raise UserNotFound()
            if channel is Channel.SMS and not user.phone:
                raise NoPhoneNumber()
            recipients = [Recipient.of(user)]
        parsed = await self._with_product_name(parsed)
        rows, _ = await self._create(
            uow, kind=kind, payload=parsed, recipients=recipients, channel=channel, source=source
        )
        return Accepted(ids=[r.id for r in rows], notifications=[NotificationRead.model_validate(r) for r in rows])

    async def from_event(
        self, uow: UnitOfWork, *, event_id: str, kind: NotificationType, payload: dict[str, Any]
    ) -> list[Claimed]:
        """The notifications an event calls for, created in the consumer's unit of work and
        claimed for their first attempt there (not in a transaction of their own after it):
        `send_claimed` them once it has committed; if that never happens (the process stops),
        the retry job takes them when the claim runs out. The unit of work is the consumer's,
        which records the event as processed: a redelivery stops there, and the unique key of
        a notification (its source, channel and address) refuses a second one in any case.
        An event that names no known user makes none."""
        addressed = await self._addressed(event_id, kind, payload)
        if addressed is None:
            return []
        parsed, recipients = addressed
        _, made = await self._create(
            uow,
            kind=kind,
            payload=parsed,
            recipients=recipients,
            channel=None,
            source=f"event:{event_id}",
            claim=True,
            unseen=True,
        )
        return [_claimed(r) for r in made]

    async def from_event_at_once(
        self, *, event_id: str, kind: NotificationType, payload: dict[str, Any], processed: dict[str, Any]
    ) -> list[Claimed] | None:
        """`from_event` of a user's event in one statement that also writes the event's
        processed row (`processed`: the parameters of `OutboxTables.add_processed_for_each`)
        and commits as it runs (`Database.multi_table_statements`): no transaction, no session.
        None, with nothing written, for anything else (an admins' alert, a payload or a user it
        cannot use, an event or notification recorded before): `from_event` decides in a unit
        of work."""
        if kind in ADMIN_TYPES:
            return None
        addressed = await self._addressed(event_id, kind, payload, quiet=True)
        if addressed is None:
            return None
        parsed, recipients = addressed
        planned = self._planned(kind, parsed, recipients, channel=None, source=f"event:{event_id}", claim=True)
        if not planned:
            return None
        try:
            ids = await repository.add_at_once(self.db, planned, processed)
        except IntegrityError:
            return None
        return [_claimed_of(ids[values["dedup_key"]], values) for values in planned]

    async def _addressed(
        self, event_id: str, kind: NotificationType, payload: dict[str, Any], *, quiet: bool = False
    ) -> tuple[Payload, list[Recipient]] | None:
        """An event's payload, parsed, and whom it goes to; None when it cannot be sent (logged,
        unless `quiet`: the unit of work that follows says it)."""
        try:
            parsed = parse_payload(kind, payload)
        except ValidationError as exc:
            if not quiet:
                log.error("notification_event_invalid", event_id=event_id, type=kind.value, errors=exc.errors())
            return None
        if kind in ADMIN_TYPES:
            recipients = await self._admins()
            parsed = await self._with_product_name(parsed)
        else:
            user_id = payload.get("userId")
            user = await self.users.get_user(user_id) if isinstance(user_id, str) else None
            if user is None:
                if not quiet:
                    log.warning("notification_user_unknown", event_id=event_id, type=kind.value, user_id=user_id)
                return None
            recipients = [Recipient.of(user)]
        if not recipients:
            if not quiet:
                log.warning("notification_no_recipients", event_id=event_id, type=kind.value)
            return None
        return parsed, recipients

    async def _admins(self) -> list[Recipient]:
        return [Recipient.of(admin) for admin in await self.users.admins()]

    async def _with_product_name(self, payload: Payload) -> Payload:
        """A low-stock alert names the product and variant, when the catalog still has them."""
        if not isinstance(payload, LowStockPayload) or payload.product_name or self.catalog is None:
            return payload
        try:
            product = (await self.catalog.products([payload.product_id])).get(payload.product_id)
        except Exception as exc:  # the alert matters more than the name: send it without one
            log.warning("notification_product_lookup_failed", product_id=payload.product_id, error=repr(exc))
            return payload
        if product is None:
            return payload
        variant = product.variants.get(payload.variant_id or "")
        label = " / ".join(variant.attributes.values()) if variant and variant.attributes else None
        return payload.model_copy(update={"product_name": product.name, "variant_label": label})

    async def _create(
        self,
        uow: UnitOfWork,
        *,
        kind: NotificationType,
        payload: Payload,
        recipients: Sequence[Recipient],
        channel: Channel | None,
        source: str,
        claim: bool = False,
        unseen: bool = False,
    ) -> tuple[list[Notification], list[Notification]]:
        """One row per recipient and channel, PENDING and due now (`claim`: taken for its first
        attempt, as `_claim` would); a row made before from the same source (a replayed
        request) is returned instead of a new one. The rows, and those of them made now.
        `unseen`: the source cannot have made any yet (an event whose processed row this unit
        of work writes: a redelivery fails there first), so none is looked for."""
        planned = self._planned(kind, payload, recipients, channel=channel, source=source, claim=claim)
        existing = {} if unseen else await repository.by_dedup_keys(uow.session, [v["dedup_key"] for v in planned])
        rows: list[Notification] = []
        made: list[Notification] = []
        for values in planned:
            if values["dedup_key"] in existing:
                rows.append(existing[values["dedup_key"]])
                continue
            row = Notification(**values)
            uow.session.add(row)
            rows.append(row)
            made.append(row)
        await uow.session.flush()
        return rows, made

    def _planned(
        self,
        kind: NotificationType,
        payload: Payload,
        recipients: Sequence[Recipient],
        *,
        channel: Channel | None,
        source: str,
        claim: bool,
    ) -> list[dict[str, Any]]:
        """The column values of one row per recipient and channel (one per source, channel and
        address), PENDING and due now (`claim`: taken for its first attempt, as `_claim` would)."""
        planned: dict[str, tuple[Recipient, Channel, str]] = {}
        for person in recipients:
            wanted = [channel] if channel else channels_for(kind, has_phone=bool(person.phone))
            for each in wanted:
                address = person.address(each)
                if address:
                    planned.setdefault(dedup_key(source, each, address), (person, each, address))
        now = self.clock.now()
        rows = []
        for key, (person, each, address) in planned.items():
            personal = payload if payload.full_name else payload.model_copy(update={"full_name": person.full_name})
            rows.append(
                {
                    "notification_id": new_public_id("ntf"),
                    "user_id": person.user_id,
                    "recipient": address,
                    "type": kind.value,
                    "channel": each.value,
                    "payload": stored_payload(personal),
                    "status": Status.PENDING.value,
                    "attempts": 1 if claim else 0,
                    "next_attempt_at": now + self.lease if claim else now,
                    "dedup_key": key,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        return rows

    # -- sending ----------------------------------------------------------------------------

    async def deliver(self, ids: Sequence[int] | None = None) -> int:
        """Sends these notifications (all due ones when None) that are PENDING and due; returns
        how many were tried. Never inside a transaction: each row is claimed, sent, settled."""
        tried = 0
        for _ in range(100):  # bounded, so one tick of the job cannot run forever
            claimed = await self._claim(ids)
            for each in claimed:
                await self._attempt(each)
            tried += len(claimed)
            if ids is not None or len(claimed) < self.batch_size:
                break
        return tried

    async def send_claimed(self, claimed: Sequence[Claimed]) -> None:
        """The first attempt at notifications `from_event` claimed, after its commit; a failure
        is left to the retry job, never raised into the event delivery."""
        for each in claimed:
            try:
                await self._attempt(each)
            except Exception as exc:
                log.warning("notification_send_deferred", notification_id=each.notification_id, error=repr(exc))

    async def try_deliver(self, ids: Sequence[int]) -> None:
        """`deliver`, for after a commit: a failure here is left to the retry job, never raised
        into the request or the event delivery that made the notifications."""
        try:
            await self.deliver(ids)
        except Exception as exc:
            log.warning("notification_send_deferred", ids=list(ids), error=repr(exc))

    async def retry_due(self) -> int:
        """One tick of the retry job: every due PENDING notification is tried again, and those
        whose last attempt was abandoned by a dead sender are given up on."""
        return await self._give_up_abandoned() + await self.deliver()

    async def _claim(self, ids: Sequence[int] | None) -> list[Claimed]:
        if ids is not None and not ids:
            return []
        async with self.db.uow() as uow:
            now = self.clock.now()
            rows = await repository.claim(
                uow.session,
                now=now,
                lease_until=now + self.lease,
                max_attempts=self.max_attempts,
                limit=self.batch_size,
                ids=ids,
            )
            claimed = [_claimed(r) for r in rows]
            await uow.commit()
        return claimed

    async def _attempt(self, each: Claimed) -> None:
        try:
            rendered = render(each.kind, each.channel, parse_payload(each.kind, each.payload))
        except (ValidationError, TemplateError) as exc:  # trying again would fail the same way
            await self._failed(each, exc, final=True)
            return
        try:
            if each.channel is Channel.EMAIL:
                message_id = await self.mailer.send(
                    to=each.recipient, subject=rendered.subject, text=rendered.text, html=rendered.html
                )
            else:
                message_id = await self.sms.send(to=each.recipient, text=rendered.text)
        except Exception as exc:  # whatever the provider raised, the notification is tried again
            await self._failed(each, exc, final=each.attempt >= self.max_attempts)
            return
        now = self.clock.now()
        await self._settle(
            each,
            status=Status.SENT.value,
            sent_at=now,
            next_attempt_at=None,
            last_error=None,
            provider_message_id=message_id[:255],
            payload=masked(each.kind, each.payload),
            updated_at=now,
        )
        log.info(
            "notification_sent",
            notification_id=each.notification_id,
            type=each.kind.value,
            channel=each.channel.value,
            attempt=each.attempt,
        )

    async def _failed(self, each: Claimed, exc: Exception, *, final: bool) -> None:
        now = self.clock.now()
        error = f"{type(exc).__name__}: {exc}"[:1000]
        if final:
            values: dict[str, Any] = {
                "status": Status.FAILED.value,
                "next_attempt_at": None,
                "payload": masked(each.kind, each.payload),
            }
        else:
            values = {"next_attempt_at": now + retry_delay(each.attempt, self.retry_base_seconds)}
        await self._settle(each, last_error=error, updated_at=now, **values)
        log.warning(
            "notification_failed" if final else "notification_send_failed",
            notification_id=each.notification_id,
            type=each.kind.value,
            channel=each.channel.value,
            attempt=each.attempt,
            error=error,
            next_attempt_at=values["next_attempt_at"],
        )

    async def _settle(self, each: Claimed, **values: Any) -> None:
        await repository.settle(self.db, each.id, attempt=each.attempt, values=values)

    async def _give_up_abandoned(self) -> int:
        async with self.db.uow() as uow:
            now = self.clock.now()
            rows = await repository.abandoned(
                uow.session, now=now, max_attempts=self.max_attempts, limit=self.batch_size
            )
            for row in rows:
                row.status = Status.FAILED.value
                row.next_attempt_at = None
                row.payload = masked(row.type, row.payload)
                row.last_error = "Abandoned: the sender stopped during the last attempt"
                row.updated_at = now
            await uow.commit()
        return len(rows)

    # -- reading ----------------------------------------------------------------------------

    async def get(self, uow: UnitOfWork, *, notification_id: str) -> NotificationRead:
        row = await repository.by_public_id(uow.session, notification_id)
        if row is None:
            raise NotificationNotFound()
        return NotificationRead.model_validate(row)

    async def page(
        self,
        uow: UnitOfWork,
        *,
        user_id: str | None,
        kind: NotificationType | None,
        status: Status | None,
        page: int,
        size: int,
    ) -> Page[NotificationRead]:
        rows, total = await repository.page(
            uow.session,
            user_id=user_id,
            kind=kind.value if kind else None,
            status=status.value if status else None,
            offset=(page - 1) * size,
            limit=size,
        )
        return Page(items=[NotificationRead.model_validate(r) for r in rows], page=page, size=size, total=total)
