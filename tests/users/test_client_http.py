"""The users client over HTTP: the users service alone on its own database (tests/services.py),
asked by a process that does not run it. Each answer is held against the in-process client's
on the same database: crossing the wire changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import Service, bearer, caller, serve
from tienda.platform.auth import Role
from tienda.platform.runtime import Platform
from tienda.users.client import AddressInfo, HttpUsersClient, InProcessUsersClient, UserInfo, users_client
from tienda.users.module import MODULE as USERS
from tienda.users.wiring import build_user_service

HOME = {
    "label": "home",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "state": "Karnataka",
    "postalCode": "560001",
    "country": "IN",
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    served = serve([USERS], tmp_path_factory.mktemp("users-service"))
    yield served
    served.stop()


@pytest.fixture
async def local(service: Service) -> AsyncIterator[InProcessUsersClient]:
    platform = service.local()
    yield InProcessUsersClient(platform.db("users"))
    await platform.close()


@pytest.fixture
async def users(tmp_path: Path, service: Service) -> AsyncIterator[HttpUsersClient]:
    platform = caller(tmp_path / "orders", users_url=service.url)
    client = users_client(platform)
    assert isinstance(client, HttpUsersClient)
    yield client
    await platform.close()


async def register(service: Service, **extra: Any) -> str:
    email = f"asha-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=service.url) as client:
        response = await client.post(
            "/api/v1/users/register",
            json={"email": email, "password": "P@ssw0rd!", "fullName": "Asha Rao", **extra},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["userId"])


async def add_address(service: Service, platform: Platform, user_id: str) -> str:
    async with httpx.AsyncClient(base_url=service.url) as client:
        response = await client.post(
            f"/api/v1/users/{user_id}/addresses", json=HOME, headers=bearer(platform, user_id, Role.USER)
        )
    assert response.status_code == 201, response.text
    return str(response.json()["addressId"])


class TestGetUser:
    async def test_answers_the_user_as_the_in_process_client_does(
        self, service: Service, users: HttpUsersClient, local: InProcessUsersClient
    ) -> None:
        user_id = await register(service, phone="+919876543210")

        got = await users.get_user(user_id)

        assert got == await local.get_user(user_id)
        assert isinstance(got, UserInfo)
        assert (got.user_id, got.full_name, got.phone, got.role, got.is_active) == (
            user_id,
            "Asha Rao",
            "+919876543210",
            "USER",
            True,
        )

    async def test_an_unknown_user_is_none(self, users: HttpUsersClient) -> None:
        assert await users.get_user("u_nobody") is None


class TestGetAddress:
    async def test_answers_the_users_address_as_the_in_process_client_does(
        self, service: Service, users: HttpUsersClient, local: InProcessUsersClient
    ) -> None:
        platform = service.local()
        try:
            user_id = await register(service)
            address_id = await add_address(service, platform, user_id)
        finally:
            await platform.close()

        got = await users.get_address(user_id, address_id)

        assert got == await local.get_address(user_id, address_id)
        assert got == AddressInfo(
            address_id=address_id,
            label="home",
            line1="12 MG Road",
            line2=None,
            city="Bengaluru",
            state="Karnataka",
            postal_code="560001",
            country="IN",
            phone=None,
        )

    async def test_someone_elses_an_unknown_or_an_unknown_users_address_is_none(
        self, service: Service, users: HttpUsersClient
    ) -> None:
        platform = service.local()
        try:
            owner = await register(service)
            other = await register(service)
            address_id = await add_address(service, platform, owner)
        finally:
            await platform.close()

        assert await users.get_address(other, address_id) is None
        assert await users.get_address(owner, "adr_nothing") is None
        assert await users.get_address("u_nobody", address_id) is None


class TestAdmins:
    async def test_are_every_active_admin_as_the_in_process_client_says(
        self, service: Service, users: HttpUsersClient, local: InProcessUsersClient
    ) -> None:
        platform = service.local()
        try:
            async with platform.db("users").uow() as uow:
                admin = await build_user_service(platform).register(
                    uow,
                    email=f"root-{uuid.uuid4().hex[:8]}@example.com",
                    password="Adm1n-pass",
                    full_name="Root",
                    phone=None,
                    role=Role.ADMIN,
                )
                await uow.commit()
        finally:
            await platform.close()
        await register(service)

        admins = await users.admins()

        assert admins == await local.admins()
        assert admin.user_id in {a.user_id for a in admins}
        assert {a.role for a in admins} == {"ADMIN"}
