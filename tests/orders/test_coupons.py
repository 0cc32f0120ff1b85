"""Admin CRUD of coupons at /api/v1/coupons (alias /api/coupons), on every SQL backend."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import Shop
from tests.orders.conftest import ALL
from tienda.orders.seed import seed_coupons

V1 = "/api/v1/coupons"
FIELDS = {
    "couponId",
    "code",
    "description",
    "discountType",
    "value",
    "minOrderAmount",
    "maxDiscountAmount",
    "startsAt",
    "endsAt",
    "usageLimit",
    "perUserLimit",
    "firstOrderOnly",
    "isActive",
    "usedCount",
    "createdAt",
    "updatedAt",
}
DIWALI: dict[str, Any] = {
    "code": "diwali20",
    "description": "20% off, up to 500",
    "discountType": "PERCENT",
    "value": 20,
    "minOrderAmount": 999,
    "maxDiscountAmount": 500,
    "startsAt": "2026-11-01T00:00:00Z",
    "endsAt": "2026-11-15T00:00:00Z",
    "usageLimit": 1000,
    "perUserLimit": 1,
}

pytestmark = ALL


async def count(shop: Shop) -> int:
    return int(await shop.scalar("orders", "SELECT COUNT(*) FROM coupons"))


class TestCreate:
    async def test_an_admin_creates_a_coupon_and_reads_it_back(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        response = await shop.client.post(V1, json=DIWALI, headers=admin)
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == FIELDS
        assert body["couponId"].startswith("cpn_")
        assert (body["code"], body["value"], body["minOrderAmount"], body["maxDiscountAmount"]) == (
            "DIWALI20",
            20.0,
            999.0,
            500.0,
        )
        assert (body["usedCount"], body["isActive"], body["firstOrderOnly"]) == (0, True, False)
        again = await shop.client.get(f"/api/coupons/{body['couponId']}", headers=admin)
        assert again.status_code == 200
        assert again.json() == body

    async def test_the_same_code_in_another_case_is_taken(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        assert (await shop.client.post(V1, json=DIWALI, headers=admin)).status_code == 201
        response = await shop.client.post(V1, json=DIWALI | {"code": "DIWALI20"}, headers=admin)
        assert response.status_code == 409
        assert response.json()["code"] == "COUPON_CODE_TAKEN"
        assert await count(shop) == 1

    @pytest.mark.parametrize(
        "change",
        [
            {"value": 0},
            {"value": 101},
            {"discountType": "FIXED", "value": 0},
            {"discountType": "BOGUS"},
            {"code": "no spaces"},
            {"code": "ab"},
            {"value": 10.005},
            {"minOrderAmount": -1},
            {"endsAt": "2026-10-01T00:00:00Z"},
            {"usageLimit": 0},
            {"unknown": 1},
        ],
    )
    async def test_bad_terms_are_refused_and_nothing_is_stored(self, shop: Shop, change: dict[str, Any]) -> None:
        _, admin = await shop.admin()
        response = await shop.client.post(V1, json=DIWALI | change, headers=admin)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "VALIDATION_FAILED"
        assert await count(shop) == 0

    async def test_only_admins(self, shop: Shop) -> None:
        _, user = await shop.user()
        assert (await shop.client.post(V1, json=DIWALI)).status_code == 401
        assert (await shop.client.post(V1, json=DIWALI, headers=user)).status_code == 403
        assert (await shop.client.get(V1, headers=user)).status_code == 403
        assert await count(shop) == 0


class TestChange:
    async def test_only_the_fields_sent_change(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        created = (await shop.client.post(V1, json=DIWALI, headers=admin)).json()
        shop.clock.advance(seconds=60)
        response = await shop.client.patch(f"{V1}/{created['couponId']}", json={"isActive": False}, headers=admin)
        assert response.status_code == 200, response.text
        changed = response.json()
        assert changed["isActive"] is False
        assert changed["updatedAt"] != created["updatedAt"]
        assert {k: v for k, v in changed.items() if k not in ("isActive", "updatedAt")} == {
            k: v for k, v in created.items() if k not in ("isActive", "updatedAt")
        }

    async def test_terms_that_no_longer_fit_together_are_refused(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        created = (await shop.client.post(V1, json=DIWALI, headers=admin)).json()
        response = await shop.client.patch(f"{V1}/{created['couponId']}", json={"value": 150}, headers=admin)
        assert response.status_code == 400
        assert (await shop.client.get(f"{V1}/{created['couponId']}", headers=admin)).json() == created

    async def test_unknown_coupon(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        response = await shop.client.patch(f"{V1}/cpn_nope", json={"isActive": False}, headers=admin)
        assert response.status_code == 404
        assert response.json()["code"] == "COUPON_NOT_FOUND"


class TestListAndDelete:
    async def test_newest_first_filtered_by_active(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        first = (await shop.client.post(V1, json=DIWALI, headers=admin)).json()
        second = (await shop.client.post(V1, json=DIWALI | {"code": "OLD5", "isActive": False}, headers=admin)).json()
        listed = (await shop.client.get(V1, headers=admin)).json()
        assert [c["couponId"] for c in listed["items"]] == [second["couponId"], first["couponId"]]
        assert (listed["page"], listed["size"], listed["total"]) == (1, 20, 2)
        active = (await shop.client.get(f"{V1}?active=true", headers=admin)).json()
        assert [c["couponId"] for c in active["items"]] == [first["couponId"]]

    async def test_a_coupon_never_used_is_deleted(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        created = (await shop.client.post(V1, json=DIWALI, headers=admin)).json()
        assert (await shop.client.delete(f"{V1}/{created['couponId']}", headers=admin)).status_code == 204
        assert (await shop.client.get(f"{V1}/{created['couponId']}", headers=admin)).status_code == 404
        assert await count(shop) == 0

    async def test_a_used_coupon_stays(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        created = (await shop.client.post(V1, json=DIWALI, headers=admin)).json()
        async with shop.platform.db("orders").engine.begin() as conn:
            await conn.execute(text("UPDATE coupons SET used_count = 3"))
        response = await shop.client.delete(f"{V1}/{created['couponId']}", headers=admin)
        assert response.status_code == 409
        assert response.json()["code"] == "COUPON_IN_USE"
        assert await count(shop) == 1


class TestSeed:
    async def test_newuser10_is_seeded_once(self, shop: Shop) -> None:
        _, admin = await shop.admin()
        assert await seed_coupons(shop.platform.db("orders"), now=shop.clock.now()) == 1
        assert await seed_coupons(shop.platform.db("orders"), now=shop.clock.now()) == 0
        [coupon] = (await shop.client.get(V1, headers=admin)).json()["items"]
        assert (coupon["code"], coupon["discountType"], coupon["value"], coupon["firstOrderOnly"]) == (
            "NEWUSER10",
            "PERCENT",
            10.0,
            True,
        )
