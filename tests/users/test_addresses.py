"""Addresses: add, edit, delete and list, one default per user, reachable only by their owner
(and admins)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import Shop
from tests.users.support import ADDRESS, assert_error, count, fields, snapshot

ADDRESS_FIELDS = {
    "addressId",
    "label",
    "line1",
    "line2",
    "city",
    "state",
    "postalCode",
    "country",
    "phone",
    "isDefault",
    "createdAt",
}
OFFICE = {"label": "office", "line1": "1 Residency Road", "city": "Bengaluru", "postalCode": "560025", "country": "IN"}


def _url(user_id: str, address_id: str | None = None) -> str:
    base = f"/api/v1/users/{user_id}/addresses"
    return f"{base}/{address_id}" if address_id else base


async def _add(shop: Shop, user_id: str, auth: dict[str, str], **changes: Any) -> dict[str, Any]:
    response = await shop.client.post(_url(user_id), json={**ADDRESS, **changes}, headers=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _defaults(shop: Shop) -> list[str]:
    """The ids of every stored default address, of every user."""
    async with shop.platform.db("users").engine.connect() as conn:
        result = await conn.execute(
            text("SELECT address_id FROM user_addresses WHERE is_default = :t ORDER BY id"), {"t": True}
        )
        return [row[0] for row in result]


class TestAddAddress:
    async def test_answers_201_with_the_stored_address(self, shop: Shop) -> None:
        user_id, auth = await shop.user()

        response = await shop.client.post(_url(user_id), json=ADDRESS, headers=auth)

        assert response.status_code == 201
        body = response.json()
        assert set(body) == ADDRESS_FIELDS
        assert body["addressId"].startswith("adr_")
        assert {k: v for k, v in body.items() if k not in ("addressId", "createdAt")} == {
            **ADDRESS,
            "phone": "+919876543210",
            "line2": None,
            "isDefault": True,
        }
        assert datetime.fromisoformat(body["createdAt"]) == shop.clock.now()
        assert await count(shop, "user_addresses") == 1
        stored = "SELECT {} FROM user_addresses WHERE address_id = :a"
        assert await shop.scalar("users", stored.format("postal_code"), a=body["addressId"]) == "560001"
        assert await shop.scalar("users", stored.format("phone"), a=body["addressId"]) == "+919876543210"
        owner = await shop.scalar("users", "SELECT id FROM users WHERE user_id = :u", u=user_id)
        assert await shop.scalar("users", stored.format("user_id"), a=body["addressId"]) == owner

    async def test_the_first_address_is_the_default_even_if_not_asked(self, shop: Shop) -> None:
        user_id, auth = await shop.user()

        first = await _add(shop, user_id, auth, isDefault=False)

        assert first["isDefault"] is True
        assert await _defaults(shop) == [first["addressId"]]

    async def test_a_second_address_is_not_the_default_unless_asked(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        first = await _add(shop, user_id, auth)

        second = await _add(shop, user_id, auth, **OFFICE)

        assert second["isDefault"] is False
        assert await _defaults(shop) == [first["addressId"]]

    async def test_is_default_on_a_second_address_moves_the_default(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        first = await _add(shop, user_id, auth)

        second = await _add(shop, user_id, auth, isDefault=True)

        assert second["isDefault"] is True
        assert await _defaults(shop) == [second["addressId"]]
        listed = (await shop.client.get(_url(user_id), headers=auth)).json()["items"]
        assert [(a["addressId"], a["isDefault"]) for a in listed] == [
            (first["addressId"], False),
            (second["addressId"], True),
        ]

    async def test_one_users_default_leaves_anothers_alone(self, shop: Shop) -> None:
        asha_id, asha = await shop.user("asha@example.com")
        ravi_id, ravi = await shop.user("ravi@example.com")
        ravis = await _add(shop, ravi_id, ravi)
        await _add(shop, asha_id, asha)

        ashas_second = await _add(shop, asha_id, asha, isDefault=True)

        assert await _defaults(shop) == [ravis["addressId"], ashas_second["addressId"]]

    async def test_concurrent_first_addresses_make_exactly_one_default(self, shop: Shop) -> None:
        user_id, auth = await shop.user()

        responses = await asyncio.gather(
            *(shop.client.post(_url(user_id), json={**ADDRESS, "label": f"a{n}"}, headers=auth) for n in range(4))
        )

        assert [r.status_code for r in responses] == [201] * 4
        assert sum(r.json()["isDefault"] for r in responses) == 1
        assert await count(shop, "user_addresses") == 4
        assert len(await _defaults(shop)) == 1

    async def test_concurrent_new_defaults_leave_exactly_one(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        await _add(shop, user_id, auth)

        responses = await asyncio.gather(
            *(
                shop.client.post(_url(user_id), json={**ADDRESS, "label": f"a{n}", "isDefault": True}, headers=auth)
                for n in range(4)
            )
        )

        assert [r.status_code for r in responses] == [201] * 4
        assert await count(shop, "user_addresses") == 5
        assert len(await _defaults(shop)) == 1

    async def test_a_twenty_first_address_is_refused(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        for n in range(20):
            await _add(shop, user_id, auth, label=f"a{n}")
        before = await snapshot(shop)

        response = await shop.client.post(_url(user_id), json=ADDRESS, headers=auth)

        assert_error(response, 409, "ADDRESS_LIMIT", error="Conflict", message="At most 20 addresses per user")
        assert await snapshot(shop) == before

    @pytest.mark.parametrize(
        ("body", "bad"),
        [
            ({}, ["body.city", "body.country", "body.line1", "body.postalCode"]),
            ({**ADDRESS, "line1": ""}, ["body.line1"]),
            ({**ADDRESS, "postalCode": "56/0001"}, ["body.postalCode"]),
            ({**ADDRESS, "phone": "12345"}, ["body.phone"]),
            ({**ADDRESS, "isDefault": "sometimes"}, ["body.isDefault"]),
            ({**ADDRESS, "city": "x" * 101}, ["body.city"]),
            ({**ADDRESS, "addressId": "adr_mine"}, ["body.addressId"]),
            ({**ADDRESS, "userId": "u_other"}, ["body.userId"]),
        ],
    )
    async def test_bad_input_is_refused_and_nothing_stored(
        self, shop: Shop, body: dict[str, Any], bad: list[str]
    ) -> None:
        user_id, auth = await shop.user()

        response = await shop.client.post(_url(user_id), json=body, headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == bad
        assert await count(shop, "user_addresses") == 0


class TestEditAddress:
    async def test_changes_only_the_fields_sent(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        added = await _add(shop, user_id, auth)

        response = await shop.client.put(
            _url(user_id, added["addressId"]), json={"line2": "Near the metro", "postalCode": "560002"}, headers=auth
        )

        assert response.status_code == 200
        assert response.json() == {**added, "line2": "Near the metro", "postalCode": "560002"}
        stored = "SELECT {} FROM user_addresses WHERE address_id = :a"
        assert await shop.scalar("users", stored.format("line2"), a=added["addressId"]) == "Near the metro"
        assert await shop.scalar("users", stored.format("postal_code"), a=added["addressId"]) == "560002"
        assert await shop.scalar("users", stored.format("line1"), a=added["addressId"]) == "12 MG Road"
        assert await shop.scalar("users", stored.format("city"), a=added["addressId"]) == "Bengaluru"

    async def test_an_optional_field_sent_as_null_is_cleared(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        added = await _add(shop, user_id, auth)

        response = await shop.client.put(_url(user_id, added["addressId"]), json={"label": None}, headers=auth)

        assert response.status_code == 200
        assert response.json()["label"] is None
        assert await count(shop, "user_addresses", "label IS NULL") == 1

    async def test_is_default_true_moves_the_default_here(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        await _add(shop, user_id, auth)
        second = await _add(shop, user_id, auth, **OFFICE)

        response = await shop.client.put(_url(user_id, second["addressId"]), json={"isDefault": True}, headers=auth)

        assert response.status_code == 200
        assert response.json()["isDefault"] is True
        assert await _defaults(shop) == [second["addressId"]]

    async def test_is_default_true_on_the_default_keeps_it(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        first = await _add(shop, user_id, auth)
        await _add(shop, user_id, auth, **OFFICE)

        response = await shop.client.put(_url(user_id, first["addressId"]), json={"isDefault": True}, headers=auth)

        assert response.status_code == 200
        assert await _defaults(shop) == [first["addressId"]]

    async def test_the_default_cannot_be_unset(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        first = await _add(shop, user_id, auth)
        await _add(shop, user_id, auth, **OFFICE)
        before = await snapshot(shop)

        response = await shop.client.put(
            _url(user_id, first["addressId"]), json={"isDefault": False, "city": "Mysuru"}, headers=auth
        )

        assert_error(
            response,
            409,
            "DEFAULT_ADDRESS_REQUIRED",
            error="Conflict",
            message="The default address cannot be unset; make another address the default instead",
        )
        assert await snapshot(shop) == before

    async def test_is_default_false_on_another_address_changes_nothing_else(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        first = await _add(shop, user_id, auth)
        second = await _add(shop, user_id, auth, **OFFICE)

        response = await shop.client.put(_url(user_id, second["addressId"]), json={"isDefault": False}, headers=auth)

        assert response.status_code == 200
        assert response.json() == second
        assert await _defaults(shop) == [first["addressId"]]

    @pytest.mark.parametrize(
        ("body", "bad"),
        [
            ({"line1": None}, ["body.line1"]),
            ({"city": None, "country": None}, ["body.city", "body.country"]),
            ({"postalCode": None}, ["body.postalCode"]),
            ({"isDefault": None}, ["body.isDefault"]),
            ({"postalCode": "#1"}, ["body.postalCode"]),
            ({"phone": "not a phone"}, ["body.phone"]),
            ({"addressId": "adr_other"}, ["body.addressId"]),
        ],
    )
    async def test_bad_changes_are_refused_and_nothing_changes(
        self, shop: Shop, body: dict[str, Any], bad: list[str]
    ) -> None:
        user_id, auth = await shop.user()
        added = await _add(shop, user_id, auth)
        before = await snapshot(shop)

        response = await shop.client.put(_url(user_id, added["addressId"]), json=body, headers=auth)

        answer = assert_error(response, 400, "VALIDATION_FAILED")
        assert fields(answer) == bad
        assert await snapshot(shop) == before

    async def test_an_unknown_address_is_404(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        await _add(shop, user_id, auth)
        before = await snapshot(shop)

        response = await shop.client.put(_url(user_id, "adr_doesnotexist"), json={"city": "Mysuru"}, headers=auth)

        assert_error(response, 404, "ADDRESS_NOT_FOUND", error="Not Found", message="Address not found")
        assert await snapshot(shop) == before


class TestDeleteAddress:
    async def test_answers_204_and_removes_it(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        first = await _add(shop, user_id, auth)
        second = await _add(shop, user_id, auth, **OFFICE)

        response = await shop.client.delete(_url(user_id, second["addressId"]), headers=auth)

        assert response.status_code == 204
        assert response.content == b""
        assert await count(shop, "user_addresses") == 1
        assert await _defaults(shop) == [first["addressId"]]
        listed = (await shop.client.get(_url(user_id), headers=auth)).json()
        assert [a["addressId"] for a in listed["items"]] == [first["addressId"]]

    async def test_deleting_the_default_promotes_the_newest_remaining(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        await _add(shop, user_id, auth, label="oldest")
        shop.clock.advance(minutes=1)
        newest = await _add(shop, user_id, auth, label="newest")
        shop.clock.advance(minutes=1)
        default = await _add(shop, user_id, auth, label="default", isDefault=True)

        response = await shop.client.delete(_url(user_id, default["addressId"]), headers=auth)

        assert response.status_code == 204
        assert await _defaults(shop) == [newest["addressId"]]
        listed = (await shop.client.get(_url(user_id), headers=auth)).json()["items"]
        assert [(a["label"], a["isDefault"]) for a in listed] == [("oldest", False), ("newest", True)]

    async def test_deleting_the_last_address_leaves_none(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        only = await _add(shop, user_id, auth)

        response = await shop.client.delete(_url(user_id, only["addressId"]), headers=auth)

        assert response.status_code == 204
        assert await count(shop, "user_addresses") == 0
        again = await _add(shop, user_id, auth)
        assert again["isDefault"] is True

    async def test_deleting_twice_is_404(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        added = await _add(shop, user_id, auth)
        await shop.client.delete(_url(user_id, added["addressId"]), headers=auth)
        before = await snapshot(shop)

        response = await shop.client.delete(_url(user_id, added["addressId"]), headers=auth)

        assert_error(response, 404, "ADDRESS_NOT_FOUND")
        assert await snapshot(shop) == before


class TestListAddresses:
    async def test_lists_oldest_first_a_page_at_a_time(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        added = []
        for n in range(3):
            added.append(await _add(shop, user_id, auth, label=f"a{n}"))
            shop.clock.advance(minutes=1)

        first = await shop.client.get(_url(user_id), params={"size": 2}, headers=auth)
        second = await shop.client.get(_url(user_id), params={"size": 2, "page": 2}, headers=auth)

        assert first.status_code == 200
        assert first.json() == {"items": added[:2], "page": 1, "size": 2, "total": 3}
        assert second.json() == {"items": added[2:], "page": 2, "size": 2, "total": 3}

    async def test_no_addresses_is_an_empty_page(self, shop: Shop) -> None:
        user_id, auth = await shop.user()

        response = await shop.client.get(_url(user_id), headers=auth)

        assert response.status_code == 200
        assert response.json() == {"items": [], "page": 1, "size": 20, "total": 0}

    async def test_lists_only_the_users_own(self, shop: Shop) -> None:
        asha_id, asha = await shop.user("asha@example.com")
        ravi_id, ravi = await shop.user("ravi@example.com")
        await _add(shop, ravi_id, ravi)
        mine = await _add(shop, asha_id, asha)

        response = await shop.client.get(_url(asha_id), headers=asha)

        assert response.json()["items"] == [mine]
        assert response.json()["total"] == 1

    @pytest.mark.parametrize(("params", "bad"), [({"size": 101}, ["query.size"]), ({"page": -1}, ["query.page"])])
    async def test_bad_paging_is_refused(self, shop: Shop, params: dict[str, int], bad: list[str]) -> None:
        user_id, auth = await shop.user()

        response = await shop.client.get(_url(user_id), params=params, headers=auth)

        assert fields(assert_error(response, 400, "VALIDATION_FAILED")) == bad


class TestAddressOwnership:
    @pytest.mark.parametrize(
        ("method", "own_address", "body"),
        [
            ("GET", False, None),
            ("POST", False, ADDRESS),
            ("PUT", True, {"city": "Mysuru"}),
            ("DELETE", True, None),
        ],
    )
    async def test_another_users_addresses_look_absent(
        self, shop: Shop, method: str, own_address: bool, body: dict[str, Any] | None
    ) -> None:
        ravi_id, ravi = await shop.user("ravi@example.com")
        ravis = await _add(shop, ravi_id, ravi)
        _, asha = await shop.user("asha@example.com")
        before = await snapshot(shop)

        url = _url(ravi_id, ravis["addressId"] if own_address else None)
        response = await shop.client.request(method, url, json=body, headers=asha)

        assert_error(response, 404, "USER_NOT_FOUND", message="User not found")
        assert await snapshot(shop) == before

    @pytest.mark.parametrize(("method", "body"), [("PUT", {"city": "Mysuru"}), ("DELETE", None)])
    async def test_another_users_address_under_ones_own_path_looks_absent(
        self, shop: Shop, method: str, body: dict[str, Any] | None
    ) -> None:
        ravi_id, ravi = await shop.user("ravi@example.com")
        ravis = await _add(shop, ravi_id, ravi)
        asha_id, asha = await shop.user("asha@example.com")
        await _add(shop, asha_id, asha)
        before = await snapshot(shop)

        response = await shop.client.request(method, _url(asha_id, ravis["addressId"]), json=body, headers=asha)

        assert_error(response, 404, "ADDRESS_NOT_FOUND", message="Address not found")
        assert await snapshot(shop) == before

    async def test_an_admin_reaches_every_users_addresses(self, shop: Shop) -> None:
        user_id, auth = await shop.user()
        first = await _add(shop, user_id, auth)
        _, admin = await shop.admin()

        added = await shop.client.post(_url(user_id), json={**OFFICE, "isDefault": True}, headers=admin)
        edited = await shop.client.put(_url(user_id, first["addressId"]), json={"city": "Mysuru"}, headers=admin)
        deleted = await shop.client.delete(_url(user_id, added.json()["addressId"]), headers=admin)
        listed = await shop.client.get(_url(user_id), headers=admin)

        assert added.status_code == 201
        assert edited.status_code == 200
        assert edited.json()["city"] == "Mysuru"
        assert deleted.status_code == 204
        assert listed.status_code == 200
        assert listed.json()["items"] == [{**first, "city": "Mysuru"}]
        admin_pk = await shop.scalar("users", "SELECT id FROM users WHERE role = 'ADMIN'")
        assert await count(shop, "user_addresses", "user_id = :a", a=admin_pk) == 0

    async def test_an_admin_adding_to_a_missing_user_gets_404(self, shop: Shop) -> None:
        _, admin = await shop.admin()

        response = await shop.client.post(_url("u_doesnotexist"), json=ADDRESS, headers=admin)

        assert_error(response, 404, "USER_NOT_FOUND")
        assert await count(shop, "user_addresses") == 0

    @pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
    async def test_without_a_token_is_refused(self, shop: Shop, method: str) -> None:
        user_id, auth = await shop.user()
        added = await _add(shop, user_id, auth)
        before = await snapshot(shop)

        url = _url(user_id, added["addressId"] if method in ("PUT", "DELETE") else None)
        response = await shop.client.request(method, url, json=ADDRESS if method == "POST" else None)

        assert_error(response, 401, "UNAUTHORIZED", message="Authentication required")
        assert await snapshot(shop) == before
