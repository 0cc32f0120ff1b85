"""Sessions: refresh-token rotation and reuse detection, logout, access-token expiry."""

from __future__ import annotations

import asyncio
import hashlib

import jwt
import pytest

from tests.conftest import Shop
from tests.users.support import assert_error, bearer, count, snapshot


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _refresh(shop: Shop, token: str, prefix: str = "/api/v1/users"):  # type: ignore[no-untyped-def]
    return await shop.client.post(f"{prefix}/refresh-token", json={"refreshToken": token})


class TestRefreshToken:
    async def test_answers_a_new_pair_and_marks_the_old_token_used(self, shop: Shop) -> None:
        user_id = await shop.register()
        first = await shop.login()

        response = await _refresh(shop, first["refreshToken"])

        assert response.status_code == 200
        second = response.json()
        assert set(second) == {"accessToken", "refreshToken", "expiresIn", "tokenType", "userId"}
        assert second["userId"] == user_id
        assert second["expiresIn"] == 900
        assert second["refreshToken"] != first["refreshToken"]
        assert second["accessToken"] != first["accessToken"]
        me = await shop.client.get("/api/v1/users/me", headers=bearer(second["accessToken"]))
        assert me.status_code == 200
        assert me.json()["userId"] == user_id
        old = _digest(first["refreshToken"])
        new = _digest(second["refreshToken"])
        assert await count(shop, "refresh_tokens") == 2
        assert await count(shop, "refresh_tokens", "token_hash = :t AND used_at IS NOT NULL", t=old) == 1
        assert await count(shop, "refresh_tokens", "token_hash = :t AND used_at IS NULL", t=new) == 1
        assert await count(shop, "refresh_tokens", "revoked_at IS NOT NULL") == 0
        family = "SELECT family_id FROM refresh_tokens WHERE token_hash = :t"
        assert await shop.scalar("users", family, t=old) == await shop.scalar("users", family, t=new)

    async def test_the_new_token_rotates_again(self, shop: Shop) -> None:
        await shop.register()
        first = await shop.login()
        second = (await _refresh(shop, first["refreshToken"])).json()

        response = await _refresh(shop, second["refreshToken"])

        assert response.status_code == 200
        assert response.json()["refreshToken"] not in (first["refreshToken"], second["refreshToken"])
        assert await count(shop, "refresh_tokens", "used_at IS NOT NULL") == 2

    async def test_reusing_a_rotated_token_revokes_its_whole_family(self, shop: Shop) -> None:
        await shop.register()
        first = await shop.login()
        second = (await _refresh(shop, first["refreshToken"])).json()

        reused = await _refresh(shop, first["refreshToken"])

        assert_error(
            reused,
            401,
            "REFRESH_TOKEN_REUSED",
            error="Unauthorized",
            message="Refresh token was already used; all sessions from it are revoked",
        )
        assert await count(shop, "refresh_tokens") == 2
        assert await count(shop, "refresh_tokens", "revoked_at IS NOT NULL") == 2
        newer = await _refresh(shop, second["refreshToken"])
        assert_error(newer, 401, "INVALID_REFRESH_TOKEN", message="Invalid or expired refresh token")
        assert await count(shop, "refresh_tokens") == 2

    async def test_reuse_leaves_the_users_other_sessions_alone(self, shop: Shop) -> None:
        await shop.register()
        laptop = await shop.login()
        phone = await shop.login()
        await _refresh(shop, laptop["refreshToken"])

        reused = await _refresh(shop, laptop["refreshToken"])
        still = await _refresh(shop, phone["refreshToken"])

        assert_error(reused, 401, "REFRESH_TOKEN_REUSED")
        assert still.status_code == 200
        assert (
            await count(
                shop, "refresh_tokens", "token_hash = :t AND revoked_at IS NULL", t=_digest(phone["refreshToken"])
            )
            == 1
        )

    async def test_an_unknown_token_is_refused_and_changes_nothing(self, shop: Shop) -> None:
        await shop.register()
        tokens = await shop.login()
        before = await snapshot(shop)

        response = await _refresh(shop, tokens["refreshToken"] + "x")
        as_access = await _refresh(shop, tokens["accessToken"])

        assert_error(response, 401, "INVALID_REFRESH_TOKEN", message="Invalid or expired refresh token")
        assert_error(as_access, 401, "INVALID_REFRESH_TOKEN")
        assert response.headers["www-authenticate"] == "Bearer"
        assert await snapshot(shop) == before

    async def test_a_token_still_refreshes_on_its_last_day(self, shop: Shop) -> None:
        await shop.register()
        tokens = await shop.login()
        shop.clock.advance(days=29, hours=23)

        response = await _refresh(shop, tokens["refreshToken"])

        assert response.status_code == 200

    async def test_a_token_expires_after_30_days(self, shop: Shop) -> None:
        await shop.register()
        tokens = await shop.login()
        before = await snapshot(shop)
        shop.clock.advance(days=30, minutes=1)

        response = await _refresh(shop, tokens["refreshToken"])

        assert_error(response, 401, "INVALID_REFRESH_TOKEN", message="Invalid or expired refresh token")
        assert await snapshot(shop) == before

    async def test_two_concurrent_uses_of_one_token_let_exactly_one_through(self, shop: Shop) -> None:
        await shop.register()
        tokens = await shop.login()

        responses = await asyncio.gather(*(_refresh(shop, tokens["refreshToken"]) for _ in range(2)))

        assert sorted(r.status_code for r in responses) == [200, 401]
        loser = next(r for r in responses if r.status_code == 401)
        assert_error(loser, 401, "REFRESH_TOKEN_REUSED")
        winner = next(r for r in responses if r.status_code == 200).json()
        # The reuse revoked the family, the winner's fresh token included.
        assert_error(await _refresh(shop, winner["refreshToken"]), 401, "INVALID_REFRESH_TOKEN")
        assert await count(shop, "refresh_tokens") == 2
        assert await count(shop, "refresh_tokens", "revoked_at IS NULL") == 0


class TestLogout:
    async def test_ends_the_session_of_the_refresh_token_and_the_access_token(self, shop: Shop) -> None:
        await shop.register()
        tokens = await shop.login()
        auth = bearer(tokens["accessToken"])

        response = await shop.client.post(
            "/api/v1/users/logout", json={"refreshToken": tokens["refreshToken"]}, headers=auth
        )

        assert response.status_code == 204
        assert response.content == b""
        assert await count(shop, "refresh_tokens", "revoked_at IS NOT NULL") == 1
        after = await shop.client.get("/api/v1/users/me", headers=auth)
        assert_error(after, 401, "UNAUTHORIZED", message="Access token revoked")
        assert_error(await _refresh(shop, tokens["refreshToken"]), 401, "INVALID_REFRESH_TOKEN")

    async def test_revokes_the_family_of_an_already_rotated_token(self, shop: Shop) -> None:
        await shop.register()
        first = await shop.login()
        second = (await _refresh(shop, first["refreshToken"])).json()

        response = await shop.client.post(
            "/api/v1/users/logout", json={"refreshToken": first["refreshToken"]}, headers=bearer(second["accessToken"])
        )

        assert response.status_code == 204
        assert await count(shop, "refresh_tokens", "revoked_at IS NULL") == 0
        assert_error(await _refresh(shop, second["refreshToken"]), 401, "INVALID_REFRESH_TOKEN")

    async def test_leaves_the_users_other_sessions_alone(self, shop: Shop) -> None:
        await shop.register()
        laptop = await shop.login()
        phone = await shop.login()

        response = await shop.client.post(
            "/api/v1/users/logout", json={"refreshToken": laptop["refreshToken"]}, headers=bearer(laptop["accessToken"])
        )

        assert response.status_code == 204
        assert (await shop.client.get("/api/v1/users/me", headers=bearer(phone["accessToken"]))).status_code == 200
        assert (await _refresh(shop, phone["refreshToken"])).status_code == 200

    async def test_without_a_refresh_token_ends_every_session(self, shop: Shop) -> None:
        await shop.register()
        laptop = await shop.login()
        phone = await shop.login()

        response = await shop.client.post("/api/v1/users/logout", headers=bearer(laptop["accessToken"]))

        assert response.status_code == 204
        assert await count(shop, "refresh_tokens", "revoked_at IS NULL") == 0
        assert_error(await _refresh(shop, laptop["refreshToken"]), 401, "INVALID_REFRESH_TOKEN")
        assert_error(await _refresh(shop, phone["refreshToken"]), 401, "INVALID_REFRESH_TOKEN")

    async def test_another_users_refresh_token_is_left_alone(self, shop: Shop) -> None:
        await shop.register("asha@example.com")
        await shop.register("ravi@example.com")
        asha = await shop.login("asha@example.com")
        ravi = await shop.login("ravi@example.com")

        response = await shop.client.post(
            "/api/v1/users/logout", json={"refreshToken": ravi["refreshToken"]}, headers=bearer(asha["accessToken"])
        )

        assert response.status_code == 204
        assert (await _refresh(shop, ravi["refreshToken"])).status_code == 200

    async def test_without_an_access_token_is_refused_and_changes_nothing(self, shop: Shop) -> None:
        await shop.register()
        tokens = await shop.login()
        before = await snapshot(shop)

        response = await shop.client.post("/api/v1/users/logout", json={"refreshToken": tokens["refreshToken"]})

        assert_error(response, 401, "UNAUTHORIZED", message="Authentication required")
        assert response.headers["www-authenticate"] == "Bearer"
        assert await snapshot(shop) == before
        assert (await _refresh(shop, tokens["refreshToken"])).status_code == 200

    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    async def test_the_revoked_access_token_stays_revoked_in_either_cache(self, shop: Shop, cache_backend: str) -> None:
        await shop.register()
        tokens = await shop.login()
        auth = bearer(tokens["accessToken"])
        await shop.client.post("/api/v1/users/logout", headers=auth)

        response = await shop.client.get("/api/v1/users/me", headers=auth)

        assert_error(response, 401, "UNAUTHORIZED", message="Access token revoked")


class TestAccessToken:
    async def test_works_until_it_expires(self, shop: Shop) -> None:
        _, auth = await shop.user()
        shop.clock.advance(minutes=14)

        response = await shop.client.get("/api/v1/users/me", headers=auth)

        assert response.status_code == 200

    async def test_is_refused_after_15_minutes(self, shop: Shop) -> None:
        _, auth = await shop.user()
        shop.clock.advance(minutes=16)

        response = await shop.client.get("/api/v1/users/me", headers=auth)

        assert_error(response, 401, "UNAUTHORIZED", message="Access token expired")
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_a_refresh_after_expiry_gives_a_working_one(self, shop: Shop) -> None:
        user_id = await shop.register()
        tokens = await shop.login()
        shop.clock.advance(minutes=16)

        fresh = (await _refresh(shop, tokens["refreshToken"])).json()
        response = await shop.client.get("/api/v1/users/me", headers=bearer(fresh["accessToken"]))

        assert response.status_code == 200
        assert response.json()["userId"] == user_id

    async def test_a_tampered_token_is_refused(self, shop: Shop) -> None:
        await shop.register()
        token = (await shop.login())["accessToken"]
        header, payload, signature = token.split(".")
        tampered = f"{header}.{payload}.{signature[::-1]}"

        response = await shop.client.get("/api/v1/users/me", headers=bearer(tampered))

        assert_error(response, 401, "UNAUTHORIZED", message="Invalid access token")

    async def test_a_token_signed_with_another_key_is_refused(self, shop: Shop) -> None:
        user_id = await shop.register()
        now = int(shop.clock.now().timestamp())
        claims = {"sub": user_id, "role": "ADMIN", "iss": "tienda", "iat": now, "exp": now + 900, "jti": "x"}
        forged = jwt.encode(claims | {"typ": "access"}, "another-secret-that-is-long-enough-for-hs256", "HS256")

        response = await shop.client.get("/api/v1/users", headers=bearer(forged))

        assert_error(response, 401, "UNAUTHORIZED", message="Invalid access token")

    @pytest.mark.parametrize(
        ("header", "message"),
        [
            ("Bearer", "Authentication required"),
            ("Basic YXNoYTpwYXNz", "Authentication required"),
            ("Token abc", "Authentication required"),
            ("Bearer not-a-jwt", "Invalid access token"),
        ],
    )
    async def test_a_malformed_authorization_header_is_refused(self, shop: Shop, header: str, message: str) -> None:
        await shop.register()

        response = await shop.client.get("/api/v1/users/me", headers={"Authorization": header})

        assert_error(response, 401, "UNAUTHORIZED", message=message)
