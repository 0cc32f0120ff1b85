"""Profiles: reading one's own (or, as an admin, anyone's), editing it, and the admin list."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.conftest import Shop
from tests.users.support import PASSWORD, assert_error, bearer, count, events, fields, snapshot

USER_FIELDS = {"userId", "email", "fullName", "phone", "role", "isActive", "createdAt", "updatedAt"}


class TestGetProfile:
    async def test_a_user_reads_their_own_profile(self, shop: Shop) -> None:
        registered_at = shop.clock.now()
        user_id, auth = await shop.user("Asha@Example.com", fullName="Asha Rao", phone="9876543210")

        response = await shop.client.get(f"/api/v1/users/{user_id}", headers=auth)

        assert response.status_code == 200
        body = response.json()
        assert set(body) == USER_FIELDS
        assert {k: v for k, v in body.items() if not k.endswith("At")} == {
            "userId": user_id,
            "email": "asha@example.com",
            "fullName": "Asha Rao",
            "phone": "+919876543210",
            "role": "USER",
            "isActive": True,
        }
        assert datetime.fromisoformat(body["createdAt"]) == registered_at
        assert datetime.fromisoformat(body["updatedAt"]) == registered_at

    async def test_another_users_profile_looks_absent(self, shop: Shop) -> None:
        ravi_id = await shop.register("ravi@example.com")
        _, asha = await shop.user("asha@example.com")

        response = await shop.client.get(f"/api/v1/users/{ravi_id}", headers=asha)

        assert_error(response, 404, "USER_NOT_FOUND", error="Not Found", message="User not found")
        assert "ravi" not in response.text

    async def test_an_existing_and_a_missing_user_get_the_same_answer(self, shop: Shop) -> None:
        ravi_id = await shop.register("ravi@example.com")
        _, asha = await shop.user("asha@example.com")

        existing = await shop.client.get(f"/api/v1/users/{ravi_id}", headers=asha)
        missing = await shop.client.get("/api/v1/users/u_doesnotexist", headers=asha)

        for response in (existing, missing):
            assert_error(response, 404, "USER_NOT_FOUND", message="User not found")

    async def test_an_admin_reads_anyones_profile(self, shop: Shop) -> None:
        user_id = await shop.register(fullName="Asha Rao")
        _, admin = await shop.admin()

        response = await shop.client.get(f"/api/v1/users/{user_id}", headers=admin)

        assert response.status_code == 200
        assert response.json()["userId"] == user_id
        assert response.json()["fullName"] == "Asha Rao"

    async def test_an_admin_asking_for_a_missing_user_gets_404(self, shop: Shop) -> None:
        _, admin = await shop.admin()

        response = await shop.client.get("/api/v1/users/u_doesnotexist", headers=admin)

        assert_error(response, 404, "USER_NOT_FOUND", message="User not found")

    async def test_without_a_token_is_refused(self, shop: Shop) -> None:
        user_id = await shop.register()

        response = await shop.client.get(f"/api/v1/users/{user_id}")

        assert_error(response, 401, "UNAUTHORIZED", error="Unauthorized", message="Authentication required")
        assert response.headers["www-authenticate"] == "Bearer"

    @pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
    async def test_a_garbage_token_is_refused(self, shop: Shop, token: str) -> None:
        user_id = await shop.register()

        response = await shop.client.get(f"/api/v1/users/{user_id}", headers=bearer(token))

        assert_error(response, 401, "UNAUTHORIZED", message="Invalid access token")


class TestMe:
    async def test_answers_the_signed_in_users_profile(self, shop: Shop) -> None:
        user_id, auth = await shop.user(fullName="Asha Rao")

        response = await shop.client.get("/api/v1/users/me", headers=auth)

        assert response.status_code == 200
        body = response.json()
        assert set(body) == USER_FIELDS
        assert body["userId"] == user_id
        assert body["fullName"] == "Asha Rao"

    async def test_an_admin_sees_the_admin_role(self, shop: Shop) -> None:
        admin_id, admin = await shop.admin()

        response = await shop.client.get("/api/v1/users/me", headers=admin)

        assert response.status_code == 200
        assert response.json()["userId"] == admin_id
        assert response.json()["role"] == "ADMIN"

    async def test_without_a_token_is_refused(self, shop: Shop) -> None:
        response = await shop.client.get("/api/v1/users/me")

        assert_error(response, 401, "UNAUTHORIZED", message="Authentication required")


class TestUpdateProfile:
    async def test_a_user_changes_their_name_and_phone(self, shop: Shop) -> None:
        registered_at = shop.clock.now()
        user_id, auth = await shop.user(fullName="Asha", phone="9876543210")
        shop.clock.advance(minutes=5)

        response = await shop.client.patch(
            f"/api/v1/users/{user_id}", json={"fullName": "Asha Rao", "phone": "+1 650 253 0000"}, headers=auth
        )

        assert response.status_code == 200
        body = response.json()
        assert set(body) == USER_FIELDS
        assert body["fullName"] == "Asha Rao"
        assert body["phone"] == "+16502530000"
        assert body["role"] == "USER"
        assert datetime.fromisoformat(body["createdAt"]) == registered_at
        assert datetime.fromisoformat(body["updatedAt"]) == shop.clock.now()
        stored = "SELECT full_name, phone FROM users WHERE user_id = :u"
        assert await shop.scalar("users", stored.replace(", phone", ""), u=user_id) == "Asha Rao"
        assert await shop.scalar("users", stored.replace("full_name, ", ""), u=user_id) == "+16502530000"
        assert await events(shop, "user.updated") == [{"userId": user_id, "fields": ["fullName", "phone"]}]

    async def test_only_the_fields_sent_change(self, shop: Shop) -> None:
        user_id, auth = await shop.user(fullName="Asha", phone="9876543210")

        response = await shop.client.patch(f"/api/v1/users/{user_id}", json={"fullName": "Asha Rao"}, headers=auth)

        assert response.status_code == 200
        assert response.json()["phone"] == "+919876543210"
        assert await shop.scalar("users", "SELECT phone FROM users WHERE user_id = :u", u=user_id) == "+919876543210"

    async def test_a_phone_sent_as_null_is_removed(self, shop: Shop) -> None:
        user_id, auth = await shop.user(phone="9876543210")

        response = await shop.client.patch(f"/api/v1/users/{user_id}", json={"phone": None}, headers=auth)

        assert response.status_code == 200
        assert response.json()["phone"] is None
        assert await shop.scalar("users", "SELECT phone FROM users WHERE user_id = :u", u=user_id) is None

    async def test_an_empty_patch_changes_nothing(self, shop: Shop) -> None:
        user_id, auth = await shop.user(fullName="Asha")
        before = await snapshot(shop)
        shop.clock.advance(minutes=5)

        response = await shop.client.patch(f"/api/v1/users/{user_id}", json={}, headers=auth)

        assert response.status_code == 200
        assert response.json()["fullName"] == "Asha"
        assert await snapshot(shop) == before

    @pytest.mark.parametrize(
        "change", [{"role": "ADMIN"}, {"isActive": False}, {"fullName": "Asha Rao", "role": "USER"}]
    )
    async def test_a_user_cannot_change_role_or_active(self, shop: Shop, change: dict[str, object]) -> None:
        user_id, auth = await shop.user(fullName="Asha")
        before = await snapshot(shop)

        response = await shop.client.patch(f"/api/v1/users/{user_id}", json=change, headers=auth)

        assert_error(response, 403, "FORBIDDEN", error="Forbidden", message="Only an admin may change role or isActive")
        assert await snapshot(shop) == before

    async def test_a_user_cannot_edit_another_users_profile(self, shop: Shop) -> None:
        ravi_id = await shop.register("ravi@example.com", fullName="Ravi")
        _, asha = await shop.user("asha@example.com")
        before = await snapshot(shop)

        response = await shop.client.patch(f"/api/v1/users/{ravi_id}", json={"fullName": "Hacked"}, headers=asha)

        assert_error(response, 404, "USER_NOT_FOUND", message="User not found")
        assert await snapshot(shop) == before

    async def test_an_admin_disables_a_user_who_then_cannot_log_in(self, shop: Shop) -> None:
        user_id = await shop.register()
        tokens = await shop.login()
        _, admin = await shop.admin()
        shop.clock.advance(seconds=1)

        response = await shop.client.patch(f"/api/v1/users/{user_id}", json={"isActive": False}, headers=admin)

        assert response.status_code == 200
        assert response.json()["isActive"] is False
        assert await count(shop, "users", "user_id = :u AND is_active = :f", u=user_id, f=False) == 1
        login = await shop.client.post("/api/v1/users/login", json={"email": "asha@example.com", "password": PASSWORD})
        assert_error(login, 403, "ACCOUNT_DISABLED")
        refresh = await shop.client.post("/api/v1/users/refresh-token", json={"refreshToken": tokens["refreshToken"]})
        assert_error(refresh, 401, "INVALID_REFRESH_TOKEN")
        profile = await shop.client.get(
            f"/api/v1/users/{user_id}", headers={"Authorization": f"Bearer {tokens['accessToken']}"}
        )
        assert_error(profile, 401, "UNAUTHORIZED", message="Access token revoked")

    async def test_an_admin_enables_a_disabled_user_again(self, shop: Shop) -> None:
        user_id = await shop.register()
        _, admin = await shop.admin()
        await shop.client.patch(f"/api/v1/users/{user_id}", json={"isActive": False}, headers=admin)

        response = await shop.client.patch(f"/api/v1/users/{user_id}", json={"isActive": True}, headers=admin)

        assert response.status_code == 200
        assert response.json()["isActive"] is True
        assert (await shop.login())["userId"] == user_id

    async def test_an_admin_promotes_a_user_to_admin(self, shop: Shop) -> None:
        user_id = await shop.register()
        _, admin = await shop.admin()

        response = await shop.client.patch(f"/api/v1/users/{user_id}", json={"role": "ADMIN"}, headers=admin)

        assert response.status_code == 200
        assert response.json()["role"] == "ADMIN"
        assert await shop.scalar("users", "SELECT role FROM users WHERE user_id = :u", u=user_id) == "ADMIN"
        promoted = bearer((await shop.login())["accessToken"])
        assert (await shop.client.get("/api/v1/users", headers=promoted)).status_code == 200

    @pytest.mark.parametrize(
        ("change", "bad"),
        [
            ({"role": "SUPERUSER"}, ["body.role"]),
            ({"role": "admin"}, ["body.role"]),
            ({"role": None}, ["body.role"]),
            ({"isActive": None}, ["body.isActive"]),
            ({"isActive": "maybe"}, ["body.isActive"]),
            ({"phone": "12345"}, ["body.phone"]),
            ({"fullName": ""}, ["body.fullName"]),
            ({"email": "new@example.com"}, ["body.email"]),
            ({"userId": "u_other"}, ["body.userId"]),
        ],
    )
    async def test_bad_changes_are_refused_even_for_an_admin(
        self, shop: Shop, change: dict[str, object], bad: list[str]
    ) -> None:
        user_id = await shop.register(fullName="Asha")
        _, admin = await shop.admin()
        before = await snapshot(shop)

        response = await shop.client.patch(f"/api/v1/users/{user_id}", json=change, headers=admin)

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == bad
        assert await snapshot(shop) == before

    async def test_an_admin_editing_a_missing_user_gets_404(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        before = await snapshot(shop)

        response = await shop.client.patch("/api/v1/users/u_doesnotexist", json={"fullName": "X"}, headers=admin)

        assert_error(response, 404, "USER_NOT_FOUND")
        assert await snapshot(shop) == before


class TestListUsers:
    async def test_an_admin_gets_a_page_of_users(self, shop: Shop) -> None:
        asha = await shop.register("asha@example.com")
        ravi = await shop.register("ravi@example.com")
        admin_id, admin = await shop.admin()

        response = await shop.client.get("/api/v1/users", headers=admin)

        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"items", "page", "size", "total"}
        assert (body["page"], body["size"], body["total"]) == (1, 20, 3)
        assert [item["userId"] for item in body["items"]] == [asha, ravi, admin_id]
        assert all(set(item) == USER_FIELDS for item in body["items"])

    async def test_pages_through_the_users(self, shop: Shop) -> None:
        ids = [await shop.register(f"user{n}@example.com") for n in range(4)]
        _, admin = await shop.admin()

        second = await shop.client.get("/api/v1/users", params={"page": 2, "size": 2}, headers=admin)
        third = await shop.client.get("/api/v1/users", params={"page": 3, "size": 2}, headers=admin)
        beyond = await shop.client.get("/api/v1/users", params={"page": 4, "size": 2}, headers=admin)

        assert second.json()["total"] == 5
        assert [item["userId"] for item in second.json()["items"]] == ids[2:4]
        assert len(third.json()["items"]) == 1
        assert beyond.status_code == 200
        assert beyond.json() == {"items": [], "page": 4, "size": 2, "total": 5}

    async def test_filters_by_part_of_the_email(self, shop: Shop) -> None:
        await shop.register("asha@example.com")
        ravi = await shop.register("ravi@shop.org")
        _, admin = await shop.admin()

        response = await shop.client.get("/api/v1/users", params={"email": "SHOP.ORG"}, headers=admin)

        assert response.status_code == 200
        assert [item["userId"] for item in response.json()["items"]] == [ravi]
        assert response.json()["total"] == 1

    async def test_the_email_filter_treats_wildcards_literally(self, shop: Shop) -> None:
        await shop.register("asha@example.com")
        _, admin = await shop.admin()

        response = await shop.client.get("/api/v1/users", params={"email": "%"}, headers=admin)

        assert response.json()["total"] == 0

    async def test_a_user_is_refused(self, shop: Shop) -> None:
        _, auth = await shop.user()

        response = await shop.client.get("/api/v1/users", headers=auth)

        assert_error(response, 403, "FORBIDDEN", error="Forbidden", message="Admin role required")

    async def test_without_a_token_is_refused(self, shop: Shop) -> None:
        response = await shop.client.get("/api/v1/users")

        assert_error(response, 401, "UNAUTHORIZED", message="Authentication required")

    @pytest.mark.parametrize(
        ("params", "bad"),
        [
            ({"page": 0}, ["query.page"]),
            ({"size": 0}, ["query.size"]),
            ({"size": 101}, ["query.size"]),
            ({"page": "first"}, ["query.page"]),
            ({"page": 0, "size": 500}, ["query.page", "query.size"]),
        ],
    )
    async def test_bad_paging_is_refused(self, shop: Shop, params: dict[str, object], bad: list[str]) -> None:
        _, admin = await shop.admin()

        response = await shop.client.get("/api/v1/users", params=params, headers=admin)

        body = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(body) == bad
