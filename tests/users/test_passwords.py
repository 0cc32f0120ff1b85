"""Passwords: changing one while signed in, and resetting a forgotten one with an e-mailed code."""

from __future__ import annotations

import asyncio
import hashlib
import re
from email.message import EmailMessage

import pytest

from tests.conftest import Shop
from tests.users.support import PASSWORD, assert_error, bearer, count, events, fields, password_hash, snapshot

NEW_PASSWORD = "N3w-Passw0rd"
FORGOT = "/api/v1/users/forgot-password"
RESET = "/api/v1/users/reset-password"
FORGOT_ANSWER = {"message": "If an account exists for this e-mail, a reset code has been sent"}


def _text(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def _reset_mails(shop: Shop) -> list[EmailMessage]:
    """The password-reset e-mails sent so far (registering sends a welcome e-mail too)."""
    return [mail for mail in shop.mails() if str(mail["Subject"]).startswith("Your Tienda password reset code")]


async def _request_code(shop: Shop, email: str = "asha@example.com") -> str:
    """Asks for a code and reads it from the e-mail that the relay delivered."""
    before = len(_reset_mails(shop))
    response = await shop.client.post(FORGOT, json={"email": email})
    assert response.status_code == 202, response.text
    await shop.relay()
    mails = _reset_mails(shop)
    assert len(mails) == before + 1
    found = re.search(r"\b\d{6}\b", _text(mails[-1]))
    assert found is not None
    return found.group()


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _login_status(shop: Shop, password: str, email: str = "asha@example.com") -> int:
    response = await shop.client.post("/api/v1/users/login", json={"email": email, "password": password})
    return response.status_code


class TestChangePassword:
    async def test_with_the_right_old_password_sets_the_new_one_and_ends_sessions(self, shop: Shop) -> None:
        user_id = await shop.register()
        tokens = await shop.login()
        old_hash = await password_hash(shop, user_id)

        response = await shop.client.post(
            RESET,
            json={"userId": user_id, "oldPassword": PASSWORD, "newPassword": NEW_PASSWORD},
            headers=bearer(tokens["accessToken"]),
        )

        assert response.status_code == 200
        assert response.json() == {"message": "Password updated"}
        new_hash = await password_hash(shop, user_id)
        assert new_hash != old_hash
        assert new_hash.startswith("$argon2id$")
        assert await count(shop, "refresh_tokens", "revoked_at IS NULL") == 0
        refreshed = await shop.client.post("/api/v1/users/refresh-token", json={"refreshToken": tokens["refreshToken"]})
        assert_error(refreshed, 401, "INVALID_REFRESH_TOKEN")
        assert await _login_status(shop, NEW_PASSWORD) == 200
        assert await _login_status(shop, PASSWORD) == 401
        assert await events(shop, "user.password_changed") == [{"userId": user_id}]

    async def test_access_tokens_issued_before_the_change_stop_working(self, shop: Shop) -> None:
        user_id = await shop.register()
        other_device = await shop.login()
        this_device = await shop.login()
        shop.clock.advance(seconds=1)

        changed = await shop.client.post(
            RESET,
            json={"userId": user_id, "oldPassword": PASSWORD, "newPassword": NEW_PASSWORD},
            headers=bearer(this_device["accessToken"]),
        )
        shop.clock.advance(seconds=1)
        fresh = await shop.login(password=NEW_PASSWORD)

        assert changed.status_code == 200
        for stale in (other_device, this_device):
            response = await shop.client.get(f"/api/v1/users/{user_id}", headers=bearer(stale["accessToken"]))
            assert_error(response, 401, "UNAUTHORIZED", message="Access token revoked")
        assert (
            await shop.client.get(f"/api/v1/users/{user_id}", headers=bearer(fresh["accessToken"]))
        ).status_code == 200

    async def test_with_a_wrong_old_password_is_refused_and_changes_nothing(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        before = await snapshot(shop)

        response = await shop.client.post(
            RESET, json={"userId": user_id, "oldPassword": "not-my-password", "newPassword": NEW_PASSWORD}, headers=auth
        )

        assert_error(response, 400, "PASSWORD_MISMATCH", error="Bad Request", message="Old password does not match")
        assert await snapshot(shop) == before
        assert await _login_status(shop, PASSWORD) == 200

    async def test_without_the_old_password_is_refused_for_oneself(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        before = await snapshot(shop)

        response = await shop.client.post(RESET, json={"userId": user_id, "newPassword": NEW_PASSWORD}, headers=auth)

        assert_error(response, 400, "PASSWORD_MISMATCH")
        assert await snapshot(shop) == before

    async def test_without_a_token_is_refused(self, shop: Shop) -> None:
        user_id = await shop.register()
        before = await snapshot(shop)

        response = await shop.client.post(
            RESET, json={"userId": user_id, "oldPassword": PASSWORD, "newPassword": NEW_PASSWORD}
        )

        assert_error(response, 401, "UNAUTHORIZED", message="Sign in to change a password with userId and oldPassword")
        assert await snapshot(shop) == before

    async def test_for_another_user_looks_like_no_such_user(self, shop: Shop) -> None:
        ravi_id = await shop.register("ravi@example.com")
        _, asha = await shop.user("asha@example.com")
        before = await snapshot(shop)

        response = await shop.client.post(
            RESET, json={"userId": ravi_id, "oldPassword": PASSWORD, "newPassword": NEW_PASSWORD}, headers=asha
        )

        assert_error(response, 404, "USER_NOT_FOUND", error="Not Found", message="User not found")
        assert await snapshot(shop) == before
        assert await _login_status(shop, PASSWORD, "ravi@example.com") == 200

    async def test_an_admin_sets_another_users_password_without_the_old_one(self, shop: Shop) -> None:
        user_id = await shop.register()
        tokens = await shop.login()
        _, admin = await shop.admin()

        response = await shop.client.post(RESET, json={"userId": user_id, "newPassword": NEW_PASSWORD}, headers=admin)

        assert response.status_code == 200
        assert response.json() == {"message": "Password updated"}
        assert await _login_status(shop, NEW_PASSWORD) == 200
        assert await _login_status(shop, PASSWORD) == 401
        assert (
            await count(
                shop, "refresh_tokens", "revoked_at IS NOT NULL AND token_hash = :t", t=_sha(tokens["refreshToken"])
            )
            == 1
        )

    async def test_an_admin_changing_their_own_needs_the_old_one(self, shop: Shop) -> None:
        admin_id, admin = await shop.admin()
        before = await snapshot(shop)

        response = await shop.client.post(RESET, json={"userId": admin_id, "newPassword": NEW_PASSWORD}, headers=admin)

        assert_error(response, 400, "PASSWORD_MISMATCH")
        assert await snapshot(shop) == before

    async def test_an_unknown_user_id_is_404_for_an_admin(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        before = await snapshot(shop)

        response = await shop.client.post(
            RESET, json={"userId": "u_doesnotexist", "newPassword": NEW_PASSWORD}, headers=admin
        )

        assert_error(response, 404, "USER_NOT_FOUND")
        assert await snapshot(shop) == before

    @pytest.mark.parametrize("new_password", ["short", "x" * 129])
    async def test_a_new_password_out_of_8_to_128_is_refused(self, shop: Shop, new_password: str) -> None:
        user_id, auth = await shop.user()
        before = await snapshot(shop)

        response = await shop.client.post(
            RESET, json={"userId": user_id, "oldPassword": PASSWORD, "newPassword": new_password}, headers=auth
        )

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == ["body.newPassword"]
        assert await snapshot(shop) == before

    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    async def test_wrong_old_passwords_are_throttled_like_failed_logins(self, shop: Shop, cache_backend: str) -> None:
        user_id, auth = await shop.user()
        wrong = {"userId": user_id, "oldPassword": "not-my-password", "newPassword": NEW_PASSWORD}
        for _ in range(5):
            assert_error(await shop.client.post(RESET, json=wrong, headers=auth), 400, "PASSWORD_MISMATCH")
        before = await snapshot(shop)

        response = await shop.client.post(
            RESET, json={"userId": user_id, "oldPassword": PASSWORD, "newPassword": NEW_PASSWORD}, headers=auth
        )

        assert_error(response, 429, "RATE_LIMITED")
        assert 1 <= int(response.headers["retry-after"]) <= 15 * 60
        assert await snapshot(shop) == before

    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    async def test_concurrent_wrong_old_passwords_get_no_more_than_five_tries(
        self, shop: Shop, cache_backend: str
    ) -> None:
        user_id, auth = await shop.user()
        before = await snapshot(shop)

        responses = await asyncio.gather(
            *(
                shop.client.post(
                    RESET,
                    json={"userId": user_id, "oldPassword": f"wrong-{n}", "newPassword": NEW_PASSWORD},
                    headers=auth,
                )
                for n in range(8)
            )
        )

        assert sorted(r.status_code for r in responses) == [400] * 5 + [429] * 3
        assert await snapshot(shop) == before

    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    async def test_a_successful_change_forgets_earlier_wrong_old_passwords(
        self, shop: Shop, cache_backend: str
    ) -> None:
        user_id, auth = await shop.user()
        wrong = {"userId": user_id, "oldPassword": "not-my-password", "newPassword": NEW_PASSWORD}
        for _ in range(4):
            await shop.client.post(RESET, json=wrong, headers=auth)
        right = {"userId": user_id, "oldPassword": PASSWORD, "newPassword": NEW_PASSWORD}
        assert (await shop.client.post(RESET, json=right, headers=auth)).status_code == 200
        for _ in range(4):
            await shop.client.post(RESET, json={**wrong, "oldPassword": "still-wrong"}, headers=auth)

        response = await shop.client.post(
            RESET, json={"userId": user_id, "oldPassword": NEW_PASSWORD, "newPassword": "Th1rd-Passw0rd"}, headers=auth
        )

        assert response.status_code == 200


class TestForgotPassword:
    async def test_mails_a_six_digit_code_to_the_account(self, shop: Shop) -> None:
        user_id = await shop.register(fullName="Asha Rao")

        response = await shop.client.post(FORGOT, json={"email": "Asha@Example.com"})

        assert response.status_code == 202
        assert response.json() == FORGOT_ANSWER
        assert shop.mails() == []  # sent by the relay, after the commit
        assert await count(shop, "password_reset_codes", "used_at IS NULL AND attempts = 0") == 1
        assert await shop.relay() == 2  # user.registered and the reset request
        [mail] = _reset_mails(shop)
        assert str(mail["To"]) == "asha@example.com"
        text = _text(mail)
        codes = re.findall(r"\b\d{6}\b", text)
        assert len(codes) == 1
        assert str(mail["Subject"]) == f"Your Tienda password reset code: {codes[0]}"
        assert "Hello Asha Rao," in text
        assert "expires in 10 minutes" in text
        stored = await shop.scalar("users", "SELECT code_hash FROM password_reset_codes")
        assert codes[0] not in stored
        assert stored != _sha(codes[0])
        [event] = await events(shop, "user.password_reset_requested")
        assert event["userId"] == user_id
        assert event["email"] == "asha@example.com"

    async def test_an_unknown_email_gets_the_same_answer_and_no_mail(self, shop: Shop) -> None:
        await shop.register()
        before = await snapshot(shop)

        response = await shop.client.post(FORGOT, json={"email": "nobody@example.com"})

        assert response.status_code == 202
        assert response.json() == FORGOT_ANSWER
        assert await snapshot(shop) == before
        await shop.relay()
        assert _reset_mails(shop) == []

    async def test_a_disabled_account_gets_the_same_answer_and_no_mail(self, shop: Shop) -> None:
        user_id = await shop.register()
        _, admin = await shop.admin()
        await shop.client.patch(f"/api/v1/users/{user_id}", json={"isActive": False}, headers=admin)
        await shop.relay()

        response = await shop.client.post(FORGOT, json={"email": "asha@example.com"})

        assert response.status_code == 202
        assert response.json() == FORGOT_ANSWER
        assert await count(shop, "password_reset_codes") == 0
        await shop.relay()
        assert _reset_mails(shop) == []

    async def test_a_code_sent_before_the_account_was_disabled_no_longer_works(self, shop: Shop) -> None:
        user_id = await shop.register()
        code = await _request_code(shop)
        _, admin = await shop.admin()
        await shop.client.patch(f"/api/v1/users/{user_id}", json={"isActive": False}, headers=admin)
        hash_before = await password_hash(shop, user_id)

        response = await shop.client.post(
            RESET, json={"email": "asha@example.com", "otp": code, "newPassword": NEW_PASSWORD}
        )

        assert_error(response, 400, "INVALID_RESET_CODE")
        assert await password_hash(shop, user_id) == hash_before

    async def test_a_new_code_replaces_the_previous_one(self, shop: Shop) -> None:
        await shop.register()
        await _request_code(shop)

        second = await _request_code(shop)

        # The first code is retired (one live code per user), so only the second can work.
        assert await count(shop, "password_reset_codes") == 2
        first_id = await shop.scalar("users", "SELECT MIN(id) FROM password_reset_codes")
        assert await count(shop, "password_reset_codes", "id = :i AND used_at IS NOT NULL", i=first_id) == 1
        assert await count(shop, "password_reset_codes", "used_at IS NULL") == 1
        response = await shop.client.post(
            RESET, json={"email": "asha@example.com", "otp": second, "newPassword": NEW_PASSWORD}
        )
        assert response.status_code == 200

    @pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
    async def test_a_sixth_request_within_15_minutes_is_refused(self, shop: Shop, cache_backend: str) -> None:
        await shop.register()
        for _ in range(5):
            assert (await shop.client.post(FORGOT, json={"email": "asha@example.com"})).status_code == 202
        before = await snapshot(shop)

        response = await shop.client.post(FORGOT, json={"email": "ASHA@example.com"})

        assert_error(response, 429, "RATE_LIMITED", error="Too Many Requests")
        assert 1 <= int(response.headers["retry-after"]) <= 15 * 60
        assert await snapshot(shop) == before


class TestResetWithCode:
    async def test_the_right_code_sets_the_new_password_and_ends_sessions(self, shop: Shop) -> None:
        user_id = await shop.register()
        tokens = await shop.login()
        code = await _request_code(shop)

        response = await shop.client.post(
            RESET, json={"email": "asha@example.com", "otp": code, "newPassword": NEW_PASSWORD}
        )

        assert response.status_code == 200
        assert response.json() == {"message": "Password updated"}
        assert await _login_status(shop, NEW_PASSWORD) == 200
        assert await _login_status(shop, PASSWORD) == 401
        assert await count(shop, "password_reset_codes", "used_at IS NOT NULL") == 1
        assert (
            await count(
                shop, "refresh_tokens", "revoked_at IS NOT NULL AND token_hash = :t", t=_sha(tokens["refreshToken"])
            )
            == 1
        )
        assert await events(shop, "user.password_changed") == [{"userId": user_id}]

    async def test_the_email_is_matched_whatever_its_case(self, shop: Shop) -> None:
        await shop.register()
        code = await _request_code(shop)

        response = await shop.client.post(
            RESET, json={"email": "ASHA@Example.com", "otp": code, "newPassword": NEW_PASSWORD}
        )

        assert response.status_code == 200
        assert await _login_status(shop, NEW_PASSWORD) == 200

    async def test_a_wrong_code_is_refused_and_counted(self, shop: Shop) -> None:
        user_id = await shop.register()
        code = await _request_code(shop)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        hash_before = await password_hash(shop, user_id)

        response = await shop.client.post(
            RESET, json={"email": "asha@example.com", "otp": wrong, "newPassword": NEW_PASSWORD}
        )

        assert_error(response, 400, "INVALID_RESET_CODE", error="Bad Request", message="Invalid or expired code")
        assert await password_hash(shop, user_id) == hash_before
        assert await count(shop, "password_reset_codes", "attempts = 1 AND used_at IS NULL") == 1

    async def test_four_wrong_codes_still_let_the_right_one_in(self, shop: Shop) -> None:
        await shop.register()
        code = await _request_code(shop)
        for n in range(1, 5):
            wrong = f"{(int(code) + n) % 1_000_000:06d}"
            response = await shop.client.post(
                RESET, json={"email": "asha@example.com", "otp": wrong, "newPassword": NEW_PASSWORD}
            )
            assert_error(response, 400, "INVALID_RESET_CODE")

        response = await shop.client.post(
            RESET, json={"email": "asha@example.com", "otp": code, "newPassword": NEW_PASSWORD}
        )

        assert response.status_code == 200

    async def test_after_five_wrong_codes_even_the_right_one_fails(self, shop: Shop) -> None:
        user_id = await shop.register()
        code = await _request_code(shop)
        hash_before = await password_hash(shop, user_id)
        for n in range(1, 6):
            wrong = f"{(int(code) + n) % 1_000_000:06d}"
            response = await shop.client.post(
                RESET, json={"email": "asha@example.com", "otp": wrong, "newPassword": NEW_PASSWORD}
            )
            assert_error(response, 400, "INVALID_RESET_CODE")
        assert await count(shop, "password_reset_codes", "attempts = 5 AND used_at IS NOT NULL") == 1

        response = await shop.client.post(
            RESET, json={"email": "asha@example.com", "otp": code, "newPassword": NEW_PASSWORD}
        )

        assert_error(response, 400, "INVALID_RESET_CODE")
        assert await password_hash(shop, user_id) == hash_before
        assert await _login_status(shop, PASSWORD) == 200

    async def test_concurrent_wrong_codes_get_no_more_than_five_tries(self, shop: Shop) -> None:
        user_id = await shop.register()
        code = await _request_code(shop)
        hash_before = await password_hash(shop, user_id)
        wrongs = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 11)]

        responses = await asyncio.gather(
            *(
                shop.client.post(RESET, json={"email": "asha@example.com", "otp": w, "newPassword": NEW_PASSWORD})
                for w in wrongs
            )
        )

        assert [r.status_code for r in responses] == [400] * 10
        assert await count(shop, "password_reset_codes", "attempts = 5 AND used_at IS NOT NULL") == 1
        right = await shop.client.post(
            RESET, json={"email": "asha@example.com", "otp": code, "newPassword": NEW_PASSWORD}
        )
        assert_error(right, 400, "INVALID_RESET_CODE")
        assert await password_hash(shop, user_id) == hash_before

    async def test_a_code_still_works_at_nine_minutes(self, shop: Shop) -> None:
        await shop.register()
        code = await _request_code(shop)
        shop.clock.advance(minutes=9)

        response = await shop.client.post(
            RESET, json={"email": "asha@example.com", "otp": code, "newPassword": NEW_PASSWORD}
        )

        assert response.status_code == 200

    async def test_a_code_expires_after_ten_minutes(self, shop: Shop) -> None:
        await shop.register()
        code = await _request_code(shop)
        shop.clock.advance(minutes=11)
        before = await snapshot(shop)

        response = await shop.client.post(
            RESET, json={"email": "asha@example.com", "otp": code, "newPassword": NEW_PASSWORD}
        )

        assert_error(response, 400, "INVALID_RESET_CODE", message="Invalid or expired code")
        assert await snapshot(shop) == before
        assert await _login_status(shop, PASSWORD) == 200

    async def test_a_code_works_only_once(self, shop: Shop) -> None:
        await shop.register()
        code = await _request_code(shop)
        first = await shop.client.post(
            RESET, json={"email": "asha@example.com", "otp": code, "newPassword": NEW_PASSWORD}
        )
        assert first.status_code == 200
        before = await snapshot(shop)

        again = await shop.client.post(
            RESET, json={"email": "asha@example.com", "otp": code, "newPassword": "Th1rd-Passw0rd"}
        )

        assert_error(again, 400, "INVALID_RESET_CODE")
        assert await snapshot(shop) == before
        assert await _login_status(shop, NEW_PASSWORD) == 200

    async def test_a_code_is_good_only_for_the_account_it_was_sent_to(self, shop: Shop) -> None:
        await shop.register("asha@example.com")
        await shop.register("ravi@example.com")
        code = await _request_code(shop, "asha@example.com")
        before = await snapshot(shop)

        response = await shop.client.post(
            RESET, json={"email": "ravi@example.com", "otp": code, "newPassword": NEW_PASSWORD}
        )

        assert_error(response, 400, "INVALID_RESET_CODE")
        assert await snapshot(shop) == before

    async def test_an_unknown_email_gets_the_same_answer_as_a_wrong_code(self, shop: Shop) -> None:
        await shop.register()
        before = await snapshot(shop)

        response = await shop.client.post(
            RESET, json={"email": "nobody@example.com", "otp": "123456", "newPassword": NEW_PASSWORD}
        )

        assert_error(response, 400, "INVALID_RESET_CODE", message="Invalid or expired code")
        assert await snapshot(shop) == before

    @pytest.mark.parametrize(
        ("body", "bad"),
        [
            ({"email": "asha@example.com", "otp": "12345", "newPassword": NEW_PASSWORD}, ["body.otp"]),
            ({"email": "asha@example.com", "otp": "12a456", "newPassword": NEW_PASSWORD}, ["body.otp"]),
            ({"email": "asha@example.com", "otp": 123456, "newPassword": NEW_PASSWORD}, ["body.otp"]),
            ({"email": "asha@example.com", "otp": "123456"}, ["body.newPassword"]),
            ({"email": "asha@example.com", "newPassword": NEW_PASSWORD}, ["body"]),
            ({"otp": "123456", "newPassword": NEW_PASSWORD}, ["body"]),
            ({"newPassword": NEW_PASSWORD}, ["body"]),
            ({"userId": "u_x", "email": "asha@example.com", "otp": "123456", "newPassword": NEW_PASSWORD}, ["body"]),
        ],
    )
    async def test_a_body_of_neither_shape_is_refused(
        self, shop: Shop, body: dict[str, object], bad: list[str]
    ) -> None:
        await shop.register()
        await _request_code(shop)
        before = await snapshot(shop)

        response = await shop.client.post(RESET, json=body)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == bad
        assert await snapshot(shop) == before
