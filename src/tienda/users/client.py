"""What other modules may ask of the users module (orders: the buyer and their addresses;
notifications: whom to write to)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tienda.platform.db import Database
from tienda.users import repository
from tienda.users.models import User


@dataclass(frozen=True)
class UserInfo:
    user_id: str
    email: str
    full_name: str | None
    phone: str | None
    role: str
    is_active: bool


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


def _info(user: User) -> UserInfo:
    return UserInfo(
        user_id=user.user_id,
        email=user.email,
        full_name=user.full_name,
        phone=user.phone,
        role=user.role,
        is_active=user.is_active,
    )


class InProcessUsersClient:
    """Calls straight into the users module, in a read-only transaction of its own (so a caller
    may ask from inside its own transaction, even on one SQLite file shared by the modules)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_user(self, user_id: str) -> UserInfo | None:
        async with self.db.reader() as uow:
            user = await repository.user_by_public_id(uow.session, user_id)
            return _info(user) if user is not None else None

    async def get_address(self, user_id: str, address_id: str) -> AddressInfo | None:
        async with self.db.reader() as uow:
            user = await repository.user_by_public_id(uow.session, user_id)
            address = await repository.address_of(uow.session, user.id, address_id) if user else None
            if address is None:
                return None
            return AddressInfo(
                address_id=address.address_id,
                label=address.label,
                line1=address.line1,
                line2=address.line2,
                city=address.city,
                state=address.state,
                postal_code=address.postal_code,
                country=address.country,
                phone=address.phone,
            )

    async def admins(self) -> list[UserInfo]:
        async with self.db.reader() as uow:
            return [_info(user) for user in await repository.active_admins(uow.session)]
