"""Every query of the users module."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tienda.platform.db import Database
from tienda.users.models import Address, PasswordResetCode, RefreshToken, User

_USER = select(User).where(User.user_id == bindparam("user_id"))
_USER_FOR_UPDATE = _USER.with_for_update()
"""Built once: every profile read and every write of a user's own data looks the user up, and
building the select and its cache key per call was a tenth of a profile read's CPU."""


async def user_by_public_id(session: AsyncSession, user_id: str, *, for_update: bool = False) -> User | None:
    found: User | None = await session.scalar(_USER_FOR_UPDATE if for_update else _USER, {"user_id": user_id})
    return found


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


async def active_admins(db: Database) -> list[tuple[Any, ...]]:
    """Every active admin, as `user_fields` tells a user: plain rows (`Database.rows`)."""
    return await db.rows(_ACTIVE_ADMINS, {})


async def user_by_pk(session: AsyncSession, pk: int) -> User | None:
    return await session.get(User, pk)


async def list_users(session: AsyncSession, *, email: str | None, offset: int, limit: int) -> tuple[list[User], int]:
    query = select(User)
    if email:
        query = query.where(User.email.contains(email.lower(), autoescape=True))
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(query.order_by(User.id).offset(offset).limit(limit))
    return list(rows), total


async def addresses_of(
    session: AsyncSession, user_pk: int, *, offset: int = 0, limit: int = 100
) -> tuple[list[Address], int]:
    base = select(Address).where(Address.user_id == user_pk)
    total = await session.scalar(select(func.count()).where(Address.user_id == user_pk)) or 0
    rows = await session.scalars(base.order_by(Address.created_at, Address.id).offset(offset).limit(limit))
    return list(rows), total


async def address_of(session: AsyncSession, user_pk: int, address_id: str) -> Address | None:
    return await session.scalar(select(Address).where(Address.user_id == user_pk, Address.address_id == address_id))


_USER_INFO = (User.user_id, User.email, User.full_name, User.phone, User.role, User.is_active)
"""What other modules are told of a user: `UserInfo`'s fields, in order."""
_USER_FIELDS = select(*_USER_INFO).where(User.user_id == bindparam("user_id"))
_ACTIVE_ADMINS = select(*_USER_INFO).where(User.role == "ADMIN", User.is_active.is_(True)).order_by(User.id)


async def user_fields(db: Database, user_id: str) -> tuple[Any, ...] | None:
    """What other modules are told of the user (`UserInfo`'s fields, in order): one plain-row
    read (`Database.rows`), as every notification of an order asks."""
    rows = await db.rows(_USER_FIELDS, {"user_id": user_id})
    return rows[0] if rows else None


_ADDRESS_FIELDS_OF_USER = (
    select(
        Address.address_id,
        Address.label,
        Address.line1,
        Address.line2,
        Address.city,
        Address.state,
        Address.postal_code,
        Address.country,
        Address.phone,
    )
    .join(User, User.id == Address.user_id)
    .where(User.user_id == bindparam("user_id"), Address.address_id == bindparam("address_id"))
)
"""Built once (every checkout asks): building it per call cost about as much CPU as running it."""


async def address_fields_of_user(db: Database, user_id: str, address_id: str) -> tuple[Any, ...] | None:
    """What other modules are told of the address (`AddressInfo`'s fields, in order), if it is
    one of the user's: one plain-row read (`Database.rows`), as every checkout asks."""
    rows = await db.rows(_ADDRESS_FIELDS_OF_USER, {"user_id": user_id, "address_id": address_id})
    return rows[0] if rows else None


async def clear_default_address(session: AsyncSession, user_pk: int, *, except_pk: int | None = None) -> None:
    query = update(Address).where(Address.user_id == user_pk, Address.is_default.is_(True))
    if except_pk is not None:
        query = query.where(Address.id != except_pk)
    await session.execute(query.values(is_default=False))


async def newest_address(session: AsyncSession, user_pk: int) -> Address | None:
    return await session.scalar(
        select(Address)
        .where(Address.user_id == user_pk)
        .order_by(Address.created_at.desc(), Address.id.desc())
        .limit(1)
    )


async def refresh_token_by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    return await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))


async def mark_refresh_token_used(session: AsyncSession, token_pk: int, at: datetime) -> bool:
    """Guarded update: of two concurrent uses of one token exactly one wins."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_pk, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
        .values(used_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_refresh_tokens(
    session: AsyncSession, *, at: datetime, family_id: str | None = None, user_pk: int | None = None
) -> None:
    query = update(RefreshToken).where(RefreshToken.revoked_at.is_(None))
    if family_id is not None:
        query = query.where(RefreshToken.family_id == family_id)
    if user_pk is not None:
        query = query.where(RefreshToken.user_id == user_pk)
    await session.execute(query.values(revoked_at=at))


async def live_reset_code(session: AsyncSession, user_pk: int, now: datetime) -> PasswordResetCode | None:
    return await session.scalar(
        select(PasswordResetCode)
        .where(
            PasswordResetCode.user_id == user_pk,
            PasswordResetCode.used_at.is_(None),
            PasswordResetCode.expires_at > now,
        )
        .order_by(PasswordResetCode.id.desc())
        .limit(1)
        .with_for_update()
    )


async def retire_reset_codes(session: AsyncSession, user_pk: int, at: datetime) -> None:
    await session.execute(
        update(PasswordResetCode)
        .where(PasswordResetCode.user_id == user_pk, PasswordResetCode.used_at.is_(None))
        .values(used_at=at)
    )
