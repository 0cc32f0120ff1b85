"""What other modules may ask of the users module (orders: the buyer and their addresses;
notifications: whom to write to)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import TypeAdapter, with_config

from tienda.platform.db import Database
from tienda.platform.http import Refused, Remote, segment
from tienda.platform.runtime import Platform
from tienda.platform.schemas import WIRE
from tienda.users import repository

USER_NOT_FOUND = "USER_NOT_FOUND"
ADDRESS_NOT_FOUND = "ADDRESS_NOT_FOUND"
"""Codes of the 404s by which `/internal/users` says "None"."""


@with_config(WIRE)
@dataclass(frozen=True)
class UserInfo:
    user_id: str
    email: str
    full_name: str | None
    phone: str | None
    role: str
    is_active: bool


@with_config(WIRE)
@dataclass(frozen=True)
class AddressInfo:
    address_id: str
    label: str | None
    line1: str
    line2: str | None
    city: str
    state: str | None
    postal_code: str
    country: str
    phone: str | None


class UsersClient(Protocol):
    async def get_user(self, user_id: str) -> UserInfo | None: ...

    async def get_address(self, user_id: str, address_id: str) -> AddressInfo | None: ...

    async def admins(self) -> list[UserInfo]:
        """Every active admin (e.g. for stock alerts)."""
        ...


class InProcessUsersClient:
    """Calls straight into the users module, in a read-only transaction of its own (so a caller
    may ask from inside its own transaction, even on one SQLite file shared by the modules)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_user(self, user_id: str) -> UserInfo | None:
        fields = await repository.user_fields(self.db, user_id)
        return UserInfo(*fields) if fields is not None else None

    async def get_address(self, user_id: str, address_id: str) -> AddressInfo | None:
        fields = await repository.address_fields_of_user(self.db, user_id, address_id)
        return AddressInfo(*fields) if fields is not None else None

    async def admins(self) -> list[UserInfo]:
        return [UserInfo(*fields) for fields in await repository.active_admins(self.db)]


USER = TypeAdapter(UserInfo)
USERS = TypeAdapter(list[UserInfo])
ADDRESS = TypeAdapter(AddressInfo)


class HttpUsersClient:
    """The users service's `/internal/users` routes (users/internal.py). Every call is a read,
    so every call is retried."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    async def get_user(self, user_id: str) -> UserInfo | None:
        try:
            response = await self.remote.call("GET", f"/internal/users/{segment(user_id)}", idempotent=True)
        except Refused as refused:
            if refused.code == USER_NOT_FOUND:
                return None
            raise
        return USER.validate_json(response.content)

    async def get_address(self, user_id: str, address_id: str) -> AddressInfo | None:
        try:
            response = await self.remote.call(
                "GET", f"/internal/users/{segment(user_id)}/addresses/{segment(address_id)}", idempotent=True
            )
        except Refused as refused:
            if refused.code in (USER_NOT_FOUND, ADDRESS_NOT_FOUND):
                return None
            raise
        return ADDRESS.validate_json(response.content)

    async def admins(self) -> list[UserInfo]:
        response = await self.remote.call("GET", "/internal/users/admins", idempotent=True)
        return USERS.validate_json(response.content)


def users_client(platform: Platform) -> UsersClient:
    """The users module as this process reaches it: in process, or over HTTP."""
    return platform.client("users", in_process=lambda p: InProcessUsersClient(p.db("users")), http=HttpUsersClient)
