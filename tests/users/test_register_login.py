"""Registration and login, as a client sees them and as they are stored."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from tests.conftest import Shop
from tests.users.support import PASSWORD, assert_error, bearer, count, events, fields, password_hash, snapshot


class TestRegister:
    async def test_registers_and_stores_a_hashed_password(self, shop: Shop) -> None:
        response = await shop.client.post(
            "/api/users/register",
            json={
                "userId": "dipankar",
                "email": "Dipankar@Example.com",
                "password": "P@ssw0rd",
                "fullName": "Dipankar Ghosh",
                "phone": "9876543210",
            },
        )

        assert response.status_code == 201
        body = response.json()
        assert body["message"] == "User registered"
        assert body["userId"].startswith("u_")
        assert body["userId"] != "dipankar"
        stored = await shop.scalar("users", "SELECT password_hash FROM users WHERE user_id = :u", u=body["userId"])
        assert stored.startswith("$argon2id$")
        assert await shop.scalar("users", "SELECT email FROM users") == "dipankar@example.com"
        assert await shop.scalar("users", "SELECT phone FROM users") == "+919876543210"

    async def test_answers_only_the_new_id_and_a_message(self, shop: Shop) -> None:
        response = await shop.client.post(
            "/api/v1/users/register", json={"email": "asha@example.com", "password": PASSWORD}
        )

        assert response.status_code == 201
        body = response.json()
        assert set(body) == {"userId", "message"}
        assert body["message"] == "User registered"
        assert await count(shop, "users") == 1
        assert await count(shop, "users", "user_id = :u AND role = 'USER'", u=body["userId"]) == 1
        assert await shop.scalar("users", "SELECT full_name FROM users") is None
        assert await shop.scalar("users", "SELECT phone FROM users") is None
        assert bool(await shop.scalar("users", "SELECT is_active FROM users")) is True

    async def test_a_user_id_in_the_body_is_ignored_even_if_it_looks_like_ours(self, shop: Shop) -> None:
        response = await shop.client.post(
            "/api/v1/users/register",
            json={"userId": "u_chosenbyme01", "email": "asha@example.com", "password": PASSWORD},
        )

        assert response.status_code == 201
        user_id = response.json()["userId"]
        assert user_id != "u_chosenbyme01"
        assert await count(shop, "users", "user_id = 'u_chosenbyme01'") == 0
        assert await count(shop, "users", "user_id = :u", u=user_id) == 1

    async def test_publishes_user_registered_in_the_outbox(self, shop: Shop) -> None:
        user_id = await shop.register("Asha@Example.com", fullName="Asha Rao")

        assert await events(shop, "user.registered") == [
            {"userId": user_id, "email": "asha@example.com", "fullName": "Asha Rao", "role": "USER"}
        ]
        assert await count(shop, "users_outbox_events") == 1
        assert await count(shop, "users_outbox_events", "published_at IS NULL") == 1

    @pytest.mark.parametrize(
        "again", ["asha@example.com", "ASHA@EXAMPLE.COM", "Asha@Example.Com", " asha@example.com "]
    )
    async def test_an_email_is_taken_whatever_its_case(self, shop: Shop, again: str) -> None:
        await shop.register("asha@example.com")
        before = await snapshot(shop)

        response = await shop.client.post("/api/v1/users/register", json={"email": again, "password": "Other-pass1"})

        assert_error(
            response, 409, "EMAIL_TAKEN", error="Conflict", message="An account with this e-mail already exists"
        )
        assert await snapshot(shop) == before

    async def test_two_concurrent_registrations_of_one_email_make_one_account(self, shop: Shop) -> None:
        responses = await asyncio.gather(
            *(
                shop.client.post("/api/v1/users/register", json={"email": email, "password": PASSWORD})
                for email in ("asha@example.com", "ASHA@example.com")
            )
        )

        assert sorted(r.status_code for r in responses) == [201, 409]
        conflict = next(r for r in responses if r.status_code == 409)
        assert_error(conflict, 409, "EMAIL_TAKEN")
        assert await count(shop, "users") == 1
        assert len(await events(shop, "user.registered")) == 1

    @pytest.mark.parametrize(
        ("phone", "stored"),
        [
            ("98765 43210", "+919876543210"),
            ("+91 98765-43210", "+919876543210"),
            ("+1 650 253 0000", "+16502530000"),
            ("+44 20 7946 0958", "+442079460958"),
        ],
    )
    async def test_a_valid_phone_is_stored_as_e164(self, shop: Shop, phone: str, stored: str) -> None:
        user_id = await shop.register(phone=phone)

        assert await shop.scalar("users", "SELECT phone FROM users WHERE user_id = :u", u=user_id) == stored

    @pytest.mark.parametrize("phone", ["12345", "0000000000", "not a phone", "+91 98765 4321099999"])
    async def test_an_invalid_phone_is_refused(self, shop: Shop, phone: str) -> None:
        response = await shop.client.post(
            "/api/v1/users/register", json={"email": "asha@example.com", "password": PASSWORD, "phone": phone}
        )

        body = assert_error(response, 400, "VALIDATION_FAILED", message="Validation failed")
        assert fields(body) == ["body.phone"]
        assert await count(shop, "users") == 0
        assert await count(shop, "users_outbox_events") == 0

    @pytest.mark.parametrize("length", [8, 128])
    async def test_a_password_of_8_to_128_characters_is_accepted(self, shop: Shop, length: int) -> None:
        password = ("Ab1!" * 40)[:length]

        await shop.register(password=password)

        assert (await shop.login(password=password))["accessToken"]

    @pytest.mark.parametrize("length", [0, 7, 129, 1000])
    async def test_a_password_shorter_than_8_or_longer_than_128_is_refused(self, shop: Shop, length: int) -> None:
        response = await shop.client.post(
            "/api/v1/users/register", json={"email": "asha@example.com", "password": ("Ab1!" * 300)[:length]}
        )

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == ["body.password"]
        assert await count(shop, "users") == 0

    async def test_a_password_keeps_its_surrounding_spaces(self, shop: Shop) -> None:
        await shop.register(password="  spaced out  ")

        stripped = await shop.client.post(
            "/api/v1/users/login", json={"email": "asha@example.com", "password": "spaced out"}
        )
        exact = await shop.client.post(
            "/api/v1/users/login", json={"email": "asha@example.com", "password": "  spaced out  "}
        )

        assert_error(stripped, 401, "INVALID_CREDENTIALS")
        assert exact.status_code == 200

    @pytest.mark.parametrize("email", ["asha", "asha@", "@example.com", "asha@example", "a b@example.com"])
    async def test_an_invalid_email_is_refused(self, shop: Shop, email: str) -> None:
        response = await shop.client.post("/api/v1/users/register", json={"email": email, "password": PASSWORD})

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == ["body.email"]
        assert await count(shop, "users") == 0

    async def test_a_role_cannot_be_chosen_at_registration(self, shop: Shop) -> None:
        response = await shop.client.post(
            "/api/v1/users/register", json={"email": "asha@example.com", "password": PASSWORD, "role": "ADMIN"}
        )

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == ["body.role"]
        assert await count(shop, "users") == 0


class TestLogin:
    async def test_answers_an_access_and_a_refresh_token(self, shop: Shop) -> None:
        user_id = await shop.register()

        response = await shop.client.post(
            "/api/v1/users/login", json={"email": "asha@example.com", "password": PASSWORD}
        )

        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"accessToken", "refreshToken", "expiresIn", "tokenType", "userId"}
        assert body["expiresIn"] == 900
        assert body["tokenType"] == "Bearer"
        assert body["userId"] == user_id
        me = await shop.client.get("/api/v1/users/me", headers=bearer(body["accessToken"]))
        assert me.status_code == 200
        assert me.json()["userId"] == user_id

    async def test_stores_only_the_hash_of_the_refresh_token(self, shop: Shop) -> None:
        await shop.register()

        tokens = await shop.login()

        digest = hashlib.sha256(tokens["refreshToken"].encode()).hexdigest()
        assert await count(shop, "refresh_tokens") == 1
        assert await shop.scalar("users", "SELECT token_hash FROM refresh_tokens") == digest
        assert await count(shop, "refresh_tokens", "token_hash = :t", t=tokens["refreshToken"]) == 0

    @pytest.mark.parametrize("typed", ["ASHA@example.com", "  asha@EXAMPLE.com "])
    async def test_the_email_is_matched_whatever_its_case(self, shop: Shop, typed: str) -> None:
        user_id = await shop.register("asha@example.com")

        response = await shop.client.post("/api/v1/users/login", json={"email": typed, "password": PASSWORD})

        assert response.status_code == 200
        assert response.json()["userId"] == user_id

    async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(self, shop: Shop) -> None:
        await shop.register()
        before = await snapshot(shop)

        wrong_password = await shop.client.post(
            "/api/v1/users/login", json={"email": "asha@example.com", "password": "not-the-password"}
        )
        unknown_email = await shop.client.post(
            "/api/v1/users/login", json={"email": "nobody@example.com", "password": PASSWORD}
        )

        for response in (wrong_password, unknown_email):
            assert_error(
                response, 401, "INVALID_CREDENTIALS", error="Unauthorized", message="Invalid email or password"
            )
            assert response.headers["www-authenticate"] == "Bearer"
        assert await snapshot(shop) == before

    async def test_a_disabled_account_cannot_log_in(self, shop: Shop) -> None:
        user_id = await shop.register()
        _, admin = await shop.admin()
        disabled = await shop.client.patch(f"/api/v1/users/{user_id}", json={"isActive": False}, headers=admin)
        assert disabled.status_code == 200
        before = await snapshot(shop)

        response = await shop.client.post(
            "/api/v1/users/login", json={"email": "asha@example.com", "password": PASSWORD}
        )

        assert_error(response, 403, "ACCOUNT_DISABLED", error="Forbidden", message="This account is disabled")
        assert await snapshot(shop) == before

    async def test_a_disabled_account_with_a_wrong_password_learns_nothing_more(self, shop: Shop) -> None:
        user_id = await shop.register()
        _, admin = await shop.admin()
        await shop.client.patch(f"/api/v1/users/{user_id}", json={"isActive": False}, headers=admin)
        before = await snapshot(shop)

        response = await shop.client.post(
            "/api/v1/users/login", json={"email": "asha@example.com", "password": "not-the-password"}
        )

        assert_error(response, 401, "INVALID_CREDENTIALS", message="Invalid email or password")
        assert await snapshot(shop) == before

    async def test_the_password_is_checked_against_the_stored_hash_only(self, shop: Shop) -> None:
        user_id = await shop.register()
        stored = await password_hash(shop, user_id)

        response = await shop.client.post("/api/v1/users/login", json={"email": "asha@example.com", "password": stored})

        assert_error(response, 401, "INVALID_CREDENTIALS")
        assert await count(shop, "refresh_tokens") == 0


THROTTLED = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@THROTTLED
class TestLoginThrottling:
    """5 failures per account and 100 per client IP in 15 minutes, on both rate-limit stores."""

    async def _fail(self, shop: Shop, email: str = "asha@example.com") -> None:
        response = await shop.client.post("/api/v1/users/login", json={"email": email, "password": "wrong-password"})
        assert_error(response, 401, "INVALID_CREDENTIALS")

    async def test_the_sixth_try_after_five_failures_is_refused_with_retry_after(
        self, shop: Shop, cache_backend: str
    ) -> None:
        await shop.register()
        for _ in range(5):
            await self._fail(shop)

        response = await shop.client.post(
            "/api/v1/users/login", json={"email": "asha@example.com", "password": "wrong-password"}
        )

        assert_error(
            response, 429, "RATE_LIMITED", error="Too Many Requests", message="Too many failed logins for this account"
        )
        assert 1 <= int(response.headers["retry-after"]) <= 15 * 60
        assert await count(shop, "refresh_tokens") == 0

    async def test_even_the_right_password_is_refused_while_throttled(self, shop: Shop, cache_backend: str) -> None:
        await shop.register()
        for _ in range(5):
            await self._fail(shop)

        response = await shop.client.post(
            "/api/v1/users/login", json={"email": "ASHA@example.com", "password": PASSWORD}
        )

        assert_error(response, 429, "RATE_LIMITED", message="Too many failed logins for this account")
        assert 1 <= int(response.headers["retry-after"]) <= 15 * 60
        assert await count(shop, "refresh_tokens") == 0

    async def test_four_failures_still_let_the_right_password_in(self, shop: Shop, cache_backend: str) -> None:
        await shop.register()
        for _ in range(4):
            await self._fail(shop)

        response = await shop.client.post(
            "/api/v1/users/login", json={"email": "asha@example.com", "password": PASSWORD}
        )

        assert response.status_code == 200
        assert await count(shop, "refresh_tokens") == 1

    async def test_a_successful_login_forgets_earlier_failures(self, shop: Shop, cache_backend: str) -> None:
        await shop.register()
        for _ in range(4):
            await self._fail(shop)
        await shop.login()
        for _ in range(4):
            await self._fail(shop)

        response = await shop.client.post(
            "/api/v1/users/login", json={"email": "asha@example.com", "password": PASSWORD}
        )

        assert response.status_code == 200

    async def test_one_account_throttled_leaves_the_others_alone(self, shop: Shop, cache_backend: str) -> None:
        await shop.register("asha@example.com")
        await shop.register("ravi@example.com")
        for _ in range(5):
            await self._fail(shop, "asha@example.com")

        response = await shop.client.post(
            "/api/v1/users/login", json={"email": "ravi@example.com", "password": PASSWORD}
        )

        assert response.status_code == 200

    async def test_an_unknown_email_is_throttled_like_a_known_one(self, shop: Shop, cache_backend: str) -> None:
        for _ in range(5):
            await self._fail(shop, "nobody@example.com")

        response = await shop.client.post(
            "/api/v1/users/login", json={"email": "nobody@example.com", "password": "wrong-password"}
        )

        assert_error(response, 429, "RATE_LIMITED", message="Too many failed logins for this account")

    async def test_a_hundred_failures_from_one_ip_block_every_account_from_it(
        self, shop: Shop, cache_backend: str
    ) -> None:
        await shop.register("ravi@example.com")
        for n in range(100):
            await self._fail(shop, f"guess{n}@example.com")

        response = await shop.client.post(
            "/api/v1/users/login", json={"email": "ravi@example.com", "password": PASSWORD}
        )

        assert_error(response, 429, "RATE_LIMITED", message="Too many failed logins from this address")
        assert 1 <= int(response.headers["retry-after"]) <= 15 * 60
        assert await count(shop, "refresh_tokens") == 0

    async def test_concurrent_failures_get_no_more_than_five_tries(self, shop: Shop, cache_backend: str) -> None:
        await shop.register()

        responses = await asyncio.gather(
            *(
                shop.client.post("/api/v1/users/login", json={"email": "asha@example.com", "password": f"wrong-{n}"})
                for n in range(12)
            )
        )

        assert sorted(r.status_code for r in responses) == [401] * 5 + [429] * 7
