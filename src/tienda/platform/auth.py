"""Passwords (argon2id), JWT access tokens, opaque refresh tokens stored hashed, roles,
and the FastAPI dependencies that guard routes: current user, admin, self-or-admin, service.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import jwt
from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from tienda.platform.cache import Cache
from tienda.platform.clock import Clock
from tienda.platform.errors import Forbidden, NotFound, Unauthorized


class Role(StrEnum):
    USER = "USER"
    ADMIN = "ADMIN"
    SERVICE = "SERVICE"


class PasswordHasher:
    """argon2id; parameters come from settings so tests can make hashing cheap."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int, concurrency: int = 2) -> None:
        # Each hash holds `memory_kib` while it runs: at most `concurrency` at once per process
        # keeps a worker's memory bounded (64 MiB x 2) however many logins arrive together.
        self._slots = asyncio.Semaphore(concurrency)
        self._hasher = Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)
        # Verifying against this keeps an unknown e-mail as slow as a wrong password.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    # argon2 takes tens of milliseconds of CPU by design and releases the GIL while it
    # works: run it in a thread so one login does not stall every other request.
    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self.verify_now, password_hash, password)

    def verify_now(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


@functools.lru_cache(maxsize=8192)
def _verified_claims(token: str, key: str, algorithm: str, issuer: str, required: tuple[str, ...]) -> dict[str, Any]:
    """A token's claims once its signature and issuer are verified, remembered per token
    string (and key): the same string always verifies the same way, and checking it cost PyJWT
    67 us, a twentieth of a signed-in request. What depends on time (expiry) and revocation
    is checked by the callers on every use. A token that fails raises and is not remembered."""
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[algorithm],
        issuer=issuer,
        options={"verify_exp": False, "verify_iat": False, "require": list(required)},
    )
    return claims


def hash_token(token: str) -> str:
    """Refresh tokens and one-time codes are stored as SHA-256: they are random, so no salt is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_hash(key: str, value: str) -> str:
    """For short secrets (6-digit codes) a plain hash is brute-forced in a blink; an HMAC
    under the server key is not, without the key."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user's public id, or a service's name, with a role."""

    subject: str
    role: Role
    token_id: str
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def can_act_for(self, user_id: str) -> bool:
        return self.is_admin or self.subject == user_id


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int
    token_id: str


class TokenService:
    def __init__(self, *, key: str, algorithm: str, issuer: str, ttl_seconds: int, clock: Clock, cache: Cache) -> None:
        self._key = key
        self._algorithm = algorithm
        self._issuer = issuer
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._cache = cache

    def issue(self, subject: str, role: Role, *, ttl_seconds: int | None = None) -> AccessToken:
        ttl = ttl_seconds or self.ttl_seconds
        now = self._clock.now()
        jti = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "sub": subject,
            "role": role.value,
            "iss": self._issuer,
            "iat": int(now.timestamp()),
            "iat_ms": int(now.timestamp() * 1000),
            "exp": int((now + timedelta(seconds=ttl)).timestamp()),
            "jti": jti,
            "typ": "access",
        }
        return AccessToken(token=jwt.encode(claims, self._key, algorithm=self._algorithm), expires_in=ttl, token_id=jti)

    async def verify(self, token: str) -> Principal:
        try:
            claims, expires_at = self._decode(token, "sub", "role", "exp", "jti")
            role = Role(claims["role"])
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthorized("Invalid access token") from exc
        if claims.get("typ") != "access" or expires_at <= self._clock.now():
            raise Unauthorized("Access token expired")
        revoked, cutoff = await self._cache.get_many(_revoked_key(claims["jti"]), _cutoff_key(claims["sub"]))
        if revoked is not None or (cutoff is not None and int(claims.get("iat_ms", 0)) < int(cutoff)):
            raise Unauthorized("Access token revoked")
        return Principal(subject=claims["sub"], role=role, token_id=claims["jti"], expires_at=expires_at)

    def sign(self, kind: str, subject: str, *, ttl_seconds: int) -> tuple[str, datetime]:
        """A signed token of another `kind` than access (e.g. a guest's cart token): it names
        `subject` until it expires, and can never pass for an access token."""
        expires_at = self._clock.now() + timedelta(seconds=ttl_seconds)
        claims = {"sub": subject, "iss": self._issuer, "exp": int(expires_at.timestamp()), "typ": kind}
        return jwt.encode(claims, self._key, algorithm=self._algorithm), expires_at

    def read(self, kind: str, token: str) -> str | None:
        """The subject of a token made by `sign(kind, ...)`; None when it has expired.
        Raises `ValueError` when it was not made by us for `kind` (forged, altered, other kind)."""
        try:
            claims, expires_at = self._decode(token, "sub", "exp", "typ")
        except jwt.PyJWTError as exc:
            raise ValueError(str(exc)) from exc
        if claims["typ"] != kind or not isinstance(claims["sub"], str):
            raise ValueError(f"not a {kind} token")
        return claims["sub"] if expires_at > self._clock.now() else None

    def _decode(self, token: str, *required: str) -> tuple[dict[str, Any], datetime]:
        """The claims of a token we signed, and when it expires. Time claims are checked by the
        callers against the injected clock, not PyJWT's wall clock."""
        claims = dict(_verified_claims(token, self._key, self._algorithm, self._issuer, required))
        return claims, datetime.fromtimestamp(claims["exp"], tz=self._clock.now().tzinfo)

    async def revoke(self, principal: Principal) -> None:
        remaining = (principal.expires_at - self._clock.now()).total_seconds()
        if remaining > 0:
            await self._cache.set(_revoked_key(principal.token_id), b"1", ttl=remaining + 1)

    async def revoke_all(self, subject: str) -> None:
        """Ends every access token issued to `subject` until now (password change, disabled
        account). Kept as long as the longest-lived token could be."""
        cutoff = int(self._clock.now().timestamp() * 1000)
        await self._cache.set(_cutoff_key(subject), str(cutoff).encode(), ttl=self.ttl_seconds + 1)


def _revoked_key(jti: str) -> str:
    return f"auth:revoked:{jti}"


def _cutoff_key(subject: str) -> str:
    return f"auth:not-before:{subject}"


class BearerPrincipal(HTTPBearer):
    """The caller, from `Authorization: Bearer <access token>`; None without such a header.
    An `HTTPBearer` (so OpenAPI shows the scheme on every route that depends on it) that
    verifies the token itself: one dependency where HTTPBearer's credentials and a second one
    verifying them were two (FastAPI's solving of a dependency costs about 15 us a request)."""

    async def __call__(self, request: HTTPConnection) -> Principal | None:  # type: ignore[override]
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "bearer" or not token:
            return None
        tokens: TokenService = request.app.state.platform.tokens
        return await tokens.verify(token)


optional_principal = BearerPrincipal(
    auto_error=False, scheme_name="HTTPBearer", description="An access token from POST /api/v1/users/login."
)


async def current_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise Unauthorized()
    return principal


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("Admin role required")
    return principal


async def service_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.role not in (Role.SERVICE, Role.ADMIN):
        raise Forbidden("Service role required")
    return principal


async def internal_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """`/internal/...` routes answer services only: not even an admin's token passes."""
    if principal.role is not Role.SERVICE:
        raise Forbidden("Only services may call internal routes", code="SERVICE_ONLY")
    return principal


async def self_or_admin(userId: str, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """A user reaches only their own resources; anyone else's look absent (404), admins reach all."""
    if not principal.can_act_for(userId):
        raise NotFound("User not found", code="USER_NOT_FOUND")
    return principal


OptionalUser = Annotated[Principal | None, Depends(optional_principal)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(admin_principal)]
Service = Annotated[Principal, Depends(service_principal)]
InternalCaller = Annotated[Principal, Depends(internal_principal)]
SelfOrAdmin = Annotated[Principal, Depends(self_or_admin)]
