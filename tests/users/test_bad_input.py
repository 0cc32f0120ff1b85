"""Garbage in: every refusal is a 4xx in the error envelope, and nothing is stored.
Also: both path prefixes answer the same, and every answer carries a request id."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import pytest

from tests.conftest import Shop
from tests.users.support import ADDRESS, PASSWORD, assert_error, bearer, count, fields, snapshot

TEN_MB = 10 * 1024 * 1024


class TestMalformedJson:
    @pytest.mark.parametrize(
        "raw",
        [
            b'{"email": "asha@example.com", "password": ',
            b"{'email': 'asha@example.com', 'password': 'P@ssw0rd!'}",
            b'{"email": "asha@example.com", "password": "P@ssw0rd!"} trailing',
            b'{"email": "asha@example.com", "password": "P@ssw0rd!",}',
            b"\xff\xfe not utf-8",
        ],
    )
    async def test_a_register_body_that_is_not_json_is_refused(self, shop: Shop, raw: bytes) -> None:
        response = await shop.client.post(
            "/api/v1/users/register", content=raw, headers={"Content-Type": "application/json"}
        )

        body = assert_error(response, 400, "MALFORMED_JSON", error="Bad Request", message="Malformed JSON body")
        assert fields(body) == ["body"]
        assert await count(shop, "users") == 0
        assert await count(shop, "users_outbox_events") == 0

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/api/v1/users/login"),
            ("POST", "/api/v1/users/refresh-token"),
            ("POST", "/api/v1/users/forgot-password"),
            ("POST", "/api/v1/users/reset-password"),
            ("POST", "/api/v1/users/logout"),
            ("PATCH", "/api/v1/users/{me}"),
            ("POST", "/api/v1/users/{me}/addresses"),
        ],
    )
    async def test_every_route_with_a_body_refuses_malformed_json(self, shop: Shop, method: str, path: str) -> None:
        user_id, auth = await shop.user()
        before = await snapshot(shop)

        response = await shop.client.request(
            method,
            path.format(me=user_id),
            content=b'{"broken": ',
            headers={**auth, "Content-Type": "application/json"},
        )

        assert_error(response, 400, "MALFORMED_JSON")
        assert await snapshot(shop) == before


class TestWrongTypes:
    async def test_each_bad_field_is_named(self, shop: Shop) -> None:
        response = await shop.client.post(
            "/api/v1/users/register",
            json={"email": 123, "password": ["P@ssw0rd!"], "fullName": {"first": "Asha"}, "phone": True},
        )

        body = assert_error(response, 400, "VALIDATION_FAILED", error="Bad Request", message="Validation failed")
        assert fields(body) == ["body.email", "body.fullName", "body.password", "body.phone"]
        assert all(detail["message"] and detail["type"] for detail in body["details"])
        assert await count(shop, "users") == 0
        assert await count(shop, "users_outbox_events") == 0

    async def test_login_names_its_bad_fields(self, shop: Shop) -> None:
        await shop.register()
        before = await snapshot(shop)

        response = await shop.client.post("/api/v1/users/login", json={"email": 42, "password": None})

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == ["body.email", "body.password"]
        assert await snapshot(shop) == before

    @pytest.mark.parametrize("payload", [[], ["asha@example.com", PASSWORD], "asha@example.com", 42, None])
    async def test_a_body_that_is_not_an_object_is_refused(self, shop: Shop, payload: Any) -> None:
        response = await shop.client.post("/api/v1/users/register", json=payload)

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == ["body"]
        assert await count(shop, "users") == 0

    async def test_a_json_body_sent_as_plain_text_is_refused(self, shop: Shop) -> None:
        response = await shop.client.post(
            "/api/v1/users/register",
            content=b'{"email": "asha@example.com", "password": "P@ssw0rd!"}',
            headers={"Content-Type": "text/plain"},
        )

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == ["body"]
        assert await count(shop, "users") == 0

    async def test_an_address_names_each_bad_field(self, shop: Shop) -> None:
        user_id, auth = await shop.user()

        response = await shop.client.post(
            f"/api/v1/users/{user_id}/addresses",
            json={**ADDRESS, "line1": 12, "city": None, "isDefault": "yes please", "postalCode": ["560001"]},
            headers=auth,
        )

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == ["body.city", "body.isDefault", "body.line1", "body.postalCode"]
        assert await count(shop, "user_addresses") == 0

    async def test_an_unknown_role_is_refused(self, shop: Shop) -> None:
        user_id = await shop.register()
        _, admin = await shop.admin()
        before = await snapshot(shop)

        response = await shop.client.patch(f"/api/v1/users/{user_id}", json={"role": "ROOT"}, headers=admin)

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == ["body.role"]
        assert body["details"][0]["type"] == "enum"
        assert await snapshot(shop) == before


class TestMissingFields:
    async def test_each_missing_field_is_named(self, shop: Shop) -> None:
        response = await shop.client.post("/api/v1/users/register", json={})

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == ["body.email", "body.password"]
        assert {detail["type"] for detail in body["details"]} == {"missing"}
        assert await count(shop, "users") == 0

    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/users/register",
            "/api/v1/users/login",
            "/api/v1/users/refresh-token",
            "/api/v1/users/forgot-password",
        ],
    )
    async def test_no_body_at_all_is_refused(self, shop: Shop, path: str) -> None:
        await shop.register()
        before = await snapshot(shop)

        response = await shop.client.post(path)

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == ["body"]
        assert await snapshot(shop) == before

    async def test_refresh_with_an_empty_token_is_refused(self, shop: Shop) -> None:
        await shop.user()
        before = await snapshot(shop)

        response = await shop.client.post("/api/v1/users/refresh-token", json={"refreshToken": ""})

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == ["body.refreshToken"]
        assert await snapshot(shop) == before


class TestUnknownFields:
    @pytest.mark.parametrize(
        ("path", "payload", "bad"),
        [
            (
                "/api/v1/users/register",
                {"email": "asha@example.com", "password": PASSWORD, "isAdmin": True},
                ["body.isAdmin"],
            ),
            (
                "/api/v1/users/register",
                {"email": "asha@example.com", "password": PASSWORD, "is_active": False},
                ["body.is_active"],
            ),
            (
                "/api/v1/users/login",
                {"email": "asha@example.com", "password": PASSWORD, "remember": True},
                ["body.remember"],
            ),
            ("/api/v1/users/refresh-token", {"refreshToken": "x", "userId": "u_x"}, ["body.userId"]),
            ("/api/v1/users/forgot-password", {"email": "asha@example.com", "phone": "9876543210"}, ["body.phone"]),
        ],
    )
    async def test_are_refused_by_name(self, shop: Shop, path: str, payload: dict[str, Any], bad: list[str]) -> None:
        before = await snapshot(shop)

        response = await shop.client.post(path, json=payload)

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == bad
        assert body["details"][0]["type"] == "extra_forbidden"
        assert await snapshot(shop) == before


class TestPayloadTooLarge:
    async def test_a_10_mb_body_is_refused(self, shop: Shop) -> None:
        huge = b'{"email": "asha@example.com", "password": "P@ssw0rd!", "fullName": "' + b"a" * TEN_MB + b'"}'

        response = await shop.client.post(
            "/api/v1/users/register", content=huge, headers={"Content-Type": "application/json"}
        )

        assert_error(
            response,
            413,
            "PAYLOAD_TOO_LARGE",
            error=HTTPStatus(413).phrase,
            message=f"Request body exceeds {shop.settings.max_body_bytes} bytes",
        )
        assert await count(shop, "users") == 0

    async def test_a_10_mb_body_without_a_length_is_refused_too(self, shop: Shop) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"email": "asha@example.com", "password": "P@ssw0rd!", "fullName": "'
            for _ in range(10):
                yield b"a" * (1024 * 1024)
            yield b'"}'

        response = await shop.client.post(
            "/api/v1/users/register", content=chunks(), headers={"Content-Type": "application/json"}
        )

        assert "content-length" not in response.request.headers
        assert_error(response, 413, "PAYLOAD_TOO_LARGE")
        assert await count(shop, "users") == 0

    async def test_a_signed_in_route_refuses_it_as_well(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        before = await snapshot(shop)

        response = await shop.client.post(
            f"/api/v1/users/{user_id}/addresses",
            content=b'{"line1": "' + b"a" * TEN_MB + b'"}',
            headers={**auth, "Content-Type": "application/json"},
        )

        assert_error(response, 413, "PAYLOAD_TOO_LARGE")
        assert await snapshot(shop) == before


class TestEnvelope:
    async def test_an_unknown_route_is_404_in_the_envelope(self, shop: Shop) -> None:
        response = await shop.client.get("/api/v1/users/u_x/wishlist")

        assert_error(response, 404, "NOT_FOUND", message="No route for GET /api/v1/users/u_x/wishlist")

    async def test_a_wrong_method_is_405_in_the_envelope(self, shop: Shop) -> None:
        response = await shop.client.delete("/api/v1/users/register")

        assert_error(response, 405, "METHOD_NOT_ALLOWED", message="Method DELETE not allowed on /api/v1/users/register")

    async def test_a_request_id_sent_is_echoed_in_the_header_and_the_body(self, shop: Shop) -> None:
        response = await shop.client.get("/api/v1/users/me", headers={"X-Request-ID": "trace-42.a:b"})

        body = assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["x-request-id"] == "trace-42.a:b"
        assert body["requestId"] == "trace-42.a:b"

    async def test_an_unsafe_request_id_is_replaced(self, shop: Shop) -> None:
        response = await shop.client.get("/api/v1/users/me", headers={"X-Request-ID": "evil\tid with spaces"})

        body = assert_error(response, 401, "UNAUTHORIZED")
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
        assert body["requestId"] == response.headers["x-request-id"]

    async def test_a_successful_answer_carries_a_request_id_too(self, shop: Shop) -> None:
        _, auth = await shop.user()

        response = await shop.client.get("/api/v1/users/me", headers=auth)

        assert response.status_code == 200
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


@pytest.mark.parametrize("prefix", ["/api/v1/users", "/api/users"])
class TestPathPrefixes:
    """Every route answers under `/api/v1/users` and, unchanged, under `/api/users`."""

    async def test_the_whole_journey_works_under_either_prefix(self, shop: Shop, prefix: str) -> None:
        registered = await shop.client.post(
            f"{prefix}/register", json={"email": "asha@example.com", "password": PASSWORD, "fullName": "Asha"}
        )
        assert registered.status_code == 201
        user_id = registered.json()["userId"]
        login = await shop.client.post(f"{prefix}/login", json={"email": "asha@example.com", "password": PASSWORD})
        assert login.status_code == 200
        auth = bearer(login.json()["accessToken"])
        refreshed = await shop.client.post(
            f"{prefix}/refresh-token", json={"refreshToken": login.json()["refreshToken"]}
        )
        assert refreshed.status_code == 200
        auth = bearer(refreshed.json()["accessToken"])

        profile = await shop.client.get(f"{prefix}/{user_id}", headers=auth)
        me = await shop.client.get(f"{prefix}/me", headers=auth)
        patched = await shop.client.patch(f"{prefix}/{user_id}", json={"fullName": "Asha Rao"}, headers=auth)
        added = await shop.client.post(f"{prefix}/{user_id}/addresses", json=ADDRESS, headers=auth)
        address_id = added.json()["addressId"]
        edited = await shop.client.put(
            f"{prefix}/{user_id}/addresses/{address_id}", json={"city": "Mysuru"}, headers=auth
        )
        listed = await shop.client.get(f"{prefix}/{user_id}/addresses", headers=auth)
        deleted = await shop.client.delete(f"{prefix}/{user_id}/addresses/{address_id}", headers=auth)
        changed = await shop.client.post(
            f"{prefix}/reset-password",
            json={"userId": user_id, "oldPassword": PASSWORD, "newPassword": "N3w-Passw0rd"},
            headers=auth,
        )
        forgot = await shop.client.post(f"{prefix}/forgot-password", json={"email": "asha@example.com"})
        relogin = await shop.client.post(
            f"{prefix}/login", json={"email": "asha@example.com", "password": "N3w-Passw0rd"}
        )
        logout = await shop.client.post(f"{prefix}/logout", headers=bearer(relogin.json()["accessToken"]))

        assert profile.status_code == 200
        assert profile.json()["userId"] == user_id
        assert me.json() == profile.json()
        assert patched.status_code == 200
        assert patched.json()["fullName"] == "Asha Rao"
        assert added.status_code == 201
        assert edited.status_code == 200
        assert edited.json()["city"] == "Mysuru"
        assert listed.json()["total"] == 1
        assert deleted.status_code == 204
        assert changed.status_code == 200
        assert forgot.status_code == 202
        assert relogin.status_code == 200
        assert logout.status_code == 204
        assert await count(shop, "users") == 1
        assert await count(shop, "user_addresses") == 0
        assert await count(shop, "password_reset_codes") == 1
        assert await count(shop, "refresh_tokens", "revoked_at IS NULL") == 0

    async def test_errors_name_the_path_that_was_called(self, shop: Shop, prefix: str) -> None:
        ravi_id = await shop.register("ravi@example.com")
        _, asha = await shop.user("asha@example.com")

        response = await shop.client.get(f"{prefix}/{ravi_id}", headers=asha)

        body = assert_error(response, 404, "USER_NOT_FOUND", message="User not found")
        assert body["path"] == f"{prefix}/{ravi_id}"

    async def test_the_admin_list_answers_the_same(self, shop: Shop, prefix: str) -> None:
        await shop.register()
        _, admin = await shop.admin()

        canonical = await shop.client.get("/api/v1/users", headers=admin)
        response = await shop.client.get(prefix, headers=admin)

        assert response.status_code == 200
        assert response.json() == canonical.json()
