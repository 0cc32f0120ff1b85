"""`/internal/users`: the users client protocol (client.py) for services in other processes."""

from __future__ import annotations

from fastapi import Request

from tienda.platform.web import internal_router
from tienda.users.client import (
    ADDRESS_NOT_FOUND,
    USER_NOT_FOUND,
    AddressInfo,
    InProcessUsersClient,
    UserInfo,
)
from tienda.users.errors import AddressNotFound, UserNotFound

router = internal_router("users")


def _users(request: Request) -> InProcessUsersClient:
    return InProcessUsersClient(request.app.state.platform.db("users"))


@router.get("/admins")
async def admins(request: Request) -> list[UserInfo]:
    return await _users(request).admins()


@router.get("/{userId}")
async def get_user(userId: str, request: Request) -> UserInfo:
    user = await _users(request).get_user(userId)
    if user is None:
        raise UserNotFound(code=USER_NOT_FOUND)
    return user


@router.get("/{userId}/addresses/{addressId}")
async def get_address(userId: str, addressId: str, request: Request) -> AddressInfo:
    address = await _users(request).get_address(userId, addressId)
    if address is None:
        raise AddressNotFound(code=ADDRESS_NOT_FOUND)
    return address
