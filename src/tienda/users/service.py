"""Use cases of the users module. Each takes a unit of work and keyword arguments, flushes,
and leaves the commit to its caller."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy.exc import IntegrityError

from tienda.platform.auth import (
    PasswordHasher,
    Principal,
    Role,
    TokenService,
    hash_token,
    keyed_hash,
    new_refresh_token,
)
from tienda.platform.clock import Clock
from tienda.platform.db import UnitOfWork
from tienda.platform.errors import Forbidden
from tienda.platform.ids import new_public_id
from tienda.platform.ratelimit import RateLimiter
from tienda.users import events, repository
from tienda.users.errors import (
    AccountDisabled,
    AddressLimitReached,
    AddressNotFound,
    DefaultAddressRequired,
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidResetCode,
    PasswordMismatch,
    RefreshTokenReused,
    UserNotFound,
)
from tienda.users.models import Address, PasswordResetCode, RefreshToken, User

MAX_ADDRESSES = 20


def normalise_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user_id: str


@dataclass(frozen=True)
class Limits:
    login_account: str
    login_ip: str
    forgot_password: str
    otp_ttl: timedelta
    otp_max_attempts: int
    refresh_ttl: timedelta


@dataclass
class UserService:
    clock: Clock
    passwords: PasswordHasher
    tokens: TokenService
    limiter: RateLimiter
    limits: Limits
    otp_key: str

    # -- registration and profiles ------------------------------------------------------

    async def register(
        self,
        uow: UnitOfWork,
        *,
        email: str,
        password: str,
        full_name: str | None,
        phone: str | None,
        role: Role = Role.USER,
    ) -> User:
        email = normalise_email(email)
        if await repository.user_by_email(uow.session, email) is not None:
            raise EmailTaken()
        now = self.clock.now()
        user = User(
            user_id=new_public_id("u"),
            email=email,
            password_hash=await self.passwords.hash(password),
            full_name=full_name,
            phone=phone,
            role=role.value,
            is_active=True,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(user)
        try:
            await uow.session.flush()
        except IntegrityError as exc:  # a concurrent registration of the same e-mail
            raise EmailTaken() from exc
        await uow.publish(
            events.USER_REGISTERED,
            {"userId": user.user_id, "email": user.email, "fullName": user.full_name, "role": user.role},
            at=now,
        )
        return user

    async def get(self, uow: UnitOfWork, *, user_id: str) -> User:
        user = await repository.user_by_public_id(uow.session, user_id)
        if user is None:
            raise UserNotFound()
        return user

    async def list_users(
        self, uow: UnitOfWork, *, email: str | None, offset: int, limit: int
    ) -> tuple[list[User], int]:
        return await repository.list_users(uow.session, email=email, offset=offset, limit=limit)

    async def update_profile(self, uow: UnitOfWork, *, actor: Principal, user_id: str, changes: dict[str, Any]) -> User:
        if not actor.is_admin and ({"role", "is_active"} & changes.keys()):
            raise Forbidden("Only an admin may change role or isActive")
        user = await self.get(uow, user_id=user_id)
        for field, value in changes.items():
            setattr(user, field, value.value if isinstance(value, Role) else value)
        if changes:
            user.updated_at = self.clock.now()
            if changes.get("is_active") is False:
                await self._end_sessions(uow, user)
            await uow.session.flush()
            await uow.publish(
                events.USER_UPDATED,
                {"userId": user.user_id, "fields": sorted(to_camel(name) for name in changes)},
                at=user.updated_at,
            )
        return user

    # -- sessions -----------------------------------------------------------------------

    async def login(self, uow: UnitOfWork, *, email: str, password: str, client_ip: str) -> IssuedTokens:
        email = normalise_email(email)
        await self.limiter.check(
            self.limits.login_ip, "login-ip", client_ip, message="Too many failed logins from this address"
        )
        # The account's slot is taken before the password is checked (and given back on
        # success), so concurrent guesses cannot all pass a check made before any failure counted.
        await self.limiter.consume(
            self.limits.login_account, "login-account", email, message="Too many failed logins for this account"
        )
        user = await repository.user_by_email(uow.session, email)
        if not await self.passwords.verify(user.password_hash if user else None, password) or user is None:
            await self.limiter.hit(self.limits.login_ip, "login-ip", client_ip)
            raise InvalidCredentials()
        await self.limiter.clear(self.limits.login_account, "login-account", email)
        if not user.is_active:
            raise AccountDisabled()
        if self.passwords.needs_rehash(user.password_hash):
            user.password_hash = await self.passwords.hash(password)
        return await self._issue(uow, user, family_id=str(uuid.uuid4()))

    async def refresh(self, uow: UnitOfWork, *, refresh_token: str) -> IssuedTokens:
        now = self.clock.now()
        token = await repository.refresh_token_by_hash(uow.session, hash_token(refresh_token))
        if token is None or token.revoked_at is not None:
            raise InvalidRefreshToken()
        if token.used_at is not None or not await repository.mark_refresh_token_used(uow.session, token.id, now):
            await repository.revoke_refresh_tokens(uow.session, at=now, family_id=token.family_id)
            raise RefreshTokenReused()
        if token.expires_at <= now:
            raise InvalidRefreshToken()
        user = await repository.user_by_pk(uow.session, token.user_id)
        if user is None or not user.is_active:
            raise InvalidRefreshToken()
        return await self._issue(uow, user, family_id=token.family_id)

    async def logout(self, uow: UnitOfWork, *, principal: Principal, refresh_token: str | None) -> None:
        now = self.clock.now()
        user = await self.get(uow, user_id=principal.subject)
        if refresh_token is None:
            await repository.revoke_refresh_tokens(uow.session, at=now, user_pk=user.id)
        else:
            token = await repository.refresh_token_by_hash(uow.session, hash_token(refresh_token))
            if token is not None and token.user_id == user.id:
                await repository.revoke_refresh_tokens(uow.session, at=now, family_id=token.family_id)
        await self.tokens.revoke(principal)

    async def _issue(self, uow: UnitOfWork, user: User, *, family_id: str) -> IssuedTokens:
        now = self.clock.now()
        raw = new_refresh_token()
        uow.session.add(
            RefreshToken(
                user_id=user.id,
                family_id=family_id,
                token_hash=hash_token(raw),
                created_at=now,
                expires_at=now + self.limits.refresh_ttl,
            )
        )
        await uow.session.flush()
        access = self.tokens.issue(user.user_id, Role(user.role))
        return IssuedTokens(
            access_token=access.token, refresh_token=raw, expires_in=access.expires_in, user_id=user.user_id
        )

    # -- passwords ----------------------------------------------------------------------

    async def change_password(
        self, uow: UnitOfWork, *, actor: Principal, user_id: str, old_password: str | None, new_password: str
    ) -> None:
        if not actor.can_act_for(user_id):
            raise UserNotFound()
        user = await self.get(uow, user_id=user_id)
        acting_on_self = actor.subject == user_id
        if acting_on_self or old_password is not None:
            # As at login: take the slot first, so concurrent guesses are counted too.
            await self.limiter.consume(self.limits.login_account, "login-account", user.email)
            if old_password is None or not await self.passwords.verify(user.password_hash, old_password):
                raise PasswordMismatch()
            await self.limiter.clear(self.limits.login_account, "login-account", user.email)
        await self._set_password(uow, user, new_password)

    async def forgot_password(self, uow: UnitOfWork, *, email: str, client_ip: str) -> None:
        """Always answers the same, so the endpoint does not reveal who has an account."""
        email = normalise_email(email)
        await self.limiter.consume(self.limits.forgot_password, "forgot-email", email)
        await self.limiter.consume(self.limits.login_ip, "forgot-ip", client_ip)
        user = await repository.user_by_email(uow.session, email)
        if user is None or not user.is_active:
            return
        now = self.clock.now()
        await repository.retire_reset_codes(uow.session, user.id, now)
        code = f"{secrets.randbelow(1_000_000):06d}"
        expires_at = now + self.limits.otp_ttl
        uow.session.add(
            PasswordResetCode(
                user_id=user.id,
                code_hash=self._code_hash(user, code),
                attempts=0,
                created_at=now,
                expires_at=expires_at,
            )
        )
        await uow.session.flush()
        await uow.publish(
            events.PASSWORD_RESET_REQUESTED,
            {
                "userId": user.user_id,
                "email": user.email,
                "fullName": user.full_name,
                "code": code,
                "expiresAt": expires_at.isoformat(),
                "minutes": int(self.limits.otp_ttl.total_seconds() // 60),
            },
            at=now,
        )

    async def reset_with_code(self, uow: UnitOfWork, *, email: str, code: str, new_password: str) -> None:
        now = self.clock.now()
        user = await repository.user_by_email(uow.session, normalise_email(email))
        reset = await repository.live_reset_code(uow.session, user.id, now) if user and user.is_active else None
        if user is None or reset is None:
            raise InvalidResetCode()
        if not secrets.compare_digest(reset.code_hash, self._code_hash(user, code)):
            reset.attempts += 1
            if reset.attempts >= self.limits.otp_max_attempts:
                reset.used_at = now
            await uow.session.flush()
            raise InvalidResetCode()
        reset.used_at = now
        await self._set_password(uow, user, new_password)

    def _code_hash(self, user: User, code: str) -> str:
        return keyed_hash(self.otp_key, f"{user.user_id}:{code}")

    async def _set_password(self, uow: UnitOfWork, user: User, new_password: str) -> None:
        now = self.clock.now()
        user.password_hash = await self.passwords.hash(new_password)
        user.updated_at = now
        await self._end_sessions(uow, user)
        await repository.retire_reset_codes(uow.session, user.id, now)
        await uow.session.flush()
        await uow.publish(events.PASSWORD_CHANGED, {"userId": user.user_id}, at=now)

    async def _end_sessions(self, uow: UnitOfWork, user: User) -> None:
        """Every refresh token and every access token issued so far stop working."""
        await repository.revoke_refresh_tokens(uow.session, at=self.clock.now(), user_pk=user.id)
        await self.tokens.revoke_all(user.user_id)

    # -- addresses ----------------------------------------------------------------------

    async def addresses(self, uow: UnitOfWork, *, user_id: str, offset: int, limit: int) -> tuple[list[Address], int]:
        user = await self.get(uow, user_id=user_id)
        return await repository.addresses_of(uow.session, user.id, offset=offset, limit=limit)

    async def add_address(self, uow: UnitOfWork, *, user_id: str, fields: dict[str, Any]) -> Address:
        user = await self._lock_user(uow, user_id)
        _, count = await repository.addresses_of(uow.session, user.id, limit=1)
        if count >= MAX_ADDRESSES:
            raise AddressLimitReached(f"At most {MAX_ADDRESSES} addresses per user")
        make_default = bool(fields.pop("is_default", False)) or count == 0
        if make_default:
            await repository.clear_default_address(uow.session, user.id)
        address = Address(
            address_id=new_public_id("adr"),
            user_id=user.id,
            is_default=make_default,
            created_at=self.clock.now(),
            **fields,
        )
        uow.session.add(address)
        await uow.session.flush()
        return address

    async def update_address(
        self, uow: UnitOfWork, *, user_id: str, address_id: str, changes: dict[str, Any]
    ) -> Address:
        user = await self._lock_user(uow, user_id)
        address = await repository.address_of(uow.session, user.id, address_id)
        if address is None:
            raise AddressNotFound()
        make_default = changes.pop("is_default", None)
        if make_default is False and address.is_default:
            raise DefaultAddressRequired()
        if make_default:
            await repository.clear_default_address(uow.session, user.id, except_pk=address.id)
            address.is_default = True
        for field, value in changes.items():
            setattr(address, field, value)
        await uow.session.flush()
        return address

    async def delete_address(self, uow: UnitOfWork, *, user_id: str, address_id: str) -> None:
        user = await self._lock_user(uow, user_id)
        address = await repository.address_of(uow.session, user.id, address_id)
        if address is None:
            raise AddressNotFound()
        was_default = address.is_default
        await uow.session.delete(address)
        await uow.session.flush()
        if was_default:
            successor = await repository.newest_address(uow.session, user.id)
            if successor is not None:
                successor.is_default = True
                await uow.session.flush()

    async def _lock_user(self, uow: UnitOfWork, user_id: str) -> User:
        """Address changes lock the user row, so two concurrent writes cannot leave two defaults."""
        user = await repository.user_by_public_id(uow.session, user_id, for_update=True)
        if user is None:
            raise UserNotFound()
        return user
