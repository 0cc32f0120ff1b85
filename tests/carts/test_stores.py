"""What each cart store keeps, how guest carts expire, and how the stores hold up under
concurrent writes (real concurrent requests against real databases and Redis)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.carts.conftest import ALL_STORES
from tests.carts.support import (
    TOKEN,
    V1,
    cart,
    guest_cart_id,
    guest_line,
    line,
    lines_of,
    merge,
    product_for_sale,
    redis_client,
    set_item,
    set_ok,
    simple_product,
    stored_carts,
    stored_lines,
    variant_id,
)
from tests.conftest import Shop
from tienda.carts.models import Cart, CartItem
from tienda.carts.store import LineKey, Owner
from tienda.carts.wiring import cart_jobs, cart_service

TTL = 3600


async def sql_carts(shop: Shop) -> list[dict[str, Any]]:
    async with shop.platform.db("carts").engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(Cart.__table__).order_by(Cart.__table__.c.id))]


async def sql_item_count(shop: Shop) -> int:
    async with shop.platform.db("carts").engine.connect() as conn:
        return len((await conn.execute(select(CartItem.__table__.c.id))).all())


async def purge(shop: Shop) -> int:
    [job] = [job for job in cart_jobs(shop.platform) if job.name == "carts.purge_expired"]
    return await job.run()


@pytest.mark.parametrize("cart_settings", [{"guest_cart_ttl_seconds": TTL}])
class TestSqlStore:
    pytestmark = pytest.mark.parametrize("cart_backend", [("sql", "sqlite"), ("sql", "postgres"), ("sql", "mysql")])

    async def test_a_users_cart_never_expires_and_a_guests_is_kept_for_the_ttl_after_each_write(
        self, shop: Shop
    ) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        user_id, user = await shop.user()
        await set_ok(shop, line(mug, 1), user)
        start = shop.clock.now()
        token, _ = await guest_line(shop, line(mug, 2))

        # when the guest writes again ten minutes on
        shop.clock.advance(minutes=10)
        await set_ok(shop, line(mug, 3), {TOKEN: token})

        # then
        rows = {row["user_id"] or "guest": row for row in await sql_carts(shop)}
        assert rows[user_id]["expires_at"] is None
        assert rows["guest"]["cart_id"] == guest_cart_id(shop, token)
        assert rows["guest"]["expires_at"] == start + timedelta(minutes=10, seconds=TTL)
        assert rows["guest"]["created_at"] == start
        assert rows["guest"]["updated_at"] == start + timedelta(minutes=10)

    async def test_the_purge_job_deletes_expired_guest_carts_and_their_lines_only(self, shop: Shop) -> None:
        # given a user's cart, a guest cart written an hour and a second ago, and one written just now
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        user_id, user = await shop.user()
        await set_ok(shop, line(mug, 1), user)
        await guest_line(shop, line(mug, 2))
        shop.clock.advance(seconds=TTL + 1)
        fresh, _ = await guest_line(shop, line(mug, 3))

        # when
        purged = await purge(shop)

        # then
        assert purged == 1
        assert set(await stored_carts(shop)) == {user_id, f"guest:{guest_cart_id(shop, fresh)}"}
        assert await sql_item_count(shop) == 2
        assert await stored_lines(shop, user_id=user_id) == [(mug["productId"], None, 1)]

        # and a second run finds nothing more
        assert await purge(shop) == 0

    async def test_a_cart_exactly_at_its_expiry_is_purged(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        await guest_line(shop, line(mug, 2))

        # when one second before, then at its expiry
        shop.clock.advance(seconds=TTL - 1)
        before = await cart_service(shop.platform).purge_expired()
        shop.clock.advance(seconds=1)
        at = await cart_service(shop.platform).purge_expired()

        # then
        assert (before, at) == (0, 1)
        assert await stored_carts(shop) == {}
        assert await sql_item_count(shop) == 0

    async def test_merging_leaves_no_line_of_the_guest_cart_behind(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        a = await simple_product(shop, admin, name="A")
        b = await simple_product(shop, admin, name="B")
        token, _ = await guest_line(shop, line(a, 2))
        await set_ok(shop, line(b, 1), {TOKEN: token})
        user_id, user = await shop.user()
        await set_ok(shop, line(a, 1), user)

        # when
        response = await merge(shop, user, {"cartToken": token})

        # then
        assert response.status_code == 200, response.text
        assert [row["user_id"] for row in await sql_carts(shop)] == [user_id]
        assert await sql_item_count(shop) == 2


@pytest.mark.parametrize("cart_settings", [{"guest_cart_ttl_seconds": TTL}])
class TestRedisStore:
    pytestmark = pytest.mark.parametrize("cart_backend", [("redis", "sqlite")])

    async def test_one_hash_per_cart_under_the_prefix_and_nothing_in_the_sql_tables(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        user_id, user = await shop.user()
        answer = await set_ok(shop, line(mug, 2), user)
        token, _ = await guest_line(shop, line(mug, 1))
        prefix = shop.settings.redis_prefix
        client = redis_client(shop)

        # when
        try:
            mine = await client.hgetall(f"{prefix}cart:{user_id}")
            theirs_ttl = await client.ttl(f"{prefix}cart:guest:{guest_cart_id(shop, token)}")
            mine_ttl = await client.ttl(f"{prefix}cart:{user_id}")
        finally:
            await client.aclose()

        # then
        item = answer["items"][0]
        fields = {k.decode(): v.decode() for k, v in mine.items()}
        assert set(fields) == {"#cart", f"{mug['productId']}/"}
        assert fields["#cart"] == answer["cartId"]
        assert json.loads(fields[f"{mug['productId']}/"]) == {
            "id": item["itemId"],
            "q": 2,
            "t": int(shop.clock.now().timestamp() * 1000),
            "n": 1,
        }
        assert mine_ttl == -1
        assert TTL - 60 < theirs_ttl <= TTL
        assert await sql_carts(shop) == []

    async def test_a_guests_write_renews_the_ttl_and_a_merge_removes_the_hash(self, shop: Shop) -> None:
        # given a guest cart whose TTL has been cut short
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        token, _ = await guest_line(shop, line(mug, 1))
        key = f"{shop.settings.redis_prefix}cart:guest:{guest_cart_id(shop, token)}"
        client = redis_client(shop)
        try:
            await client.expire(key, 100)

            # when the guest writes again
            await set_ok(shop, line(mug, 2), {TOKEN: token})

            # then
            assert TTL - 60 < await client.ttl(key) <= TTL

            # when the user merges it
            _, user = await shop.user()
            response = await merge(shop, user, {"cartToken": token})

            # then
            assert response.status_code == 200, response.text
            assert await client.exists(key) == 0
        finally:
            await client.aclose()

    async def test_the_purge_job_leaves_expiry_to_redis(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin)
        token, _ = await guest_line(shop, line(mug, 1))
        cart_id = guest_cart_id(shop, token)
        shop.clock.advance(seconds=TTL + 1)

        # when
        purged = await purge(shop)

        # then
        assert purged == 0
        assert list(await stored_carts(shop)) == [f"guest:{cart_id}"]


# Smaller pools than the default 30 per database: still many transactions at once, without
# several test processes at once running the shared database servers out of connections.
POOL = {"db_pool_size": 12}


class TestConcurrentWrites:
    pytestmark = pytest.mark.parametrize("cart_backend", ALL_STORES)

    @pytest.mark.parametrize("cart_settings", [POOL])
    async def test_twenty_first_writes_at_once_make_one_cart_of_twenty_lines(self, shop: Shop) -> None:
        # given twenty products, and three users without a cart (all racing at once: more collisions)
        _, admin = await shop.admin()
        products = [await simple_product(shop, admin, name=f"P{n:02}") for n in range(20)]
        users = [await shop.user(f"buyer{n}@example.com") for n in range(3)]

        # when each user adds the twenty at once
        responses = await asyncio.gather(*(set_item(shop, line(p, 1), user) for _, user in users for p in products))

        # then each has one cart of twenty lines
        assert [r.status_code for r in responses] == [200] * 60, [r.text for r in responses if r.status_code != 200]
        for n, (_, user) in enumerate(users):
            body = await cart(shop, user)
            assert sorted(lines_of(body)) == sorted((p["productId"], None, 1) for p in products)
            assert len({i["itemId"] for i in body["items"]}) == 20
            assert {r.json()["cartId"] for r in responses[20 * n : 20 * (n + 1)]} == {body["cartId"]}
        assert set(await stored_carts(shop)) == {user_id for user_id, _ in users}

    @pytest.mark.parametrize("cart_settings", [POOL])
    async def test_twenty_writes_of_one_line_at_once_leave_one_line(self, shop: Shop) -> None:
        # given a product, and four users without a cart (all racing at once: more collisions)
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=50)
        users = [await shop.user(f"buyer{n}@example.com") for n in range(4)]

        # when each user sends twenty writes of the line at once
        responses = await asyncio.gather(
            *(set_item(shop, line(mug, q), user) for _, user in users for q in range(1, 21))
        )

        # then
        assert [r.status_code for r in responses] == [200] * 80, [r.text for r in responses if r.status_code != 200]
        for user_id, user in users:
            stored = await stored_lines(shop, user_id=user_id)
            assert stored is not None
            [(product_id, no_variant, quantity)] = stored
            assert (product_id, no_variant) == (mug["productId"], None)
            assert quantity in range(1, 21)
            assert lines_of(await cart(shop, user)) == stored
        assert set(await stored_carts(shop)) == {user_id for user_id, _ in users}

    @pytest.mark.parametrize("cart_settings", [POOL])
    async def test_take_outs_at_once_each_take_their_units(self, shop: Shop) -> None:
        # given a line of 30 mugs and one of 2 tees
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=50)
        tee = await simple_product(shop, admin, name="Tee", stock=50)
        user_id, user = await shop.user()
        await set_ok(shop, line(mug, 30), user)
        await set_ok(shop, line(tee, 2), user)
        service, owner = cart_service(shop.platform), Owner(user_id=user_id)

        # when twenty orders placed at once take out a mug each (as their sagas do), and one both tees
        await asyncio.gather(
            *(service.take_out(owner, [(mug["productId"], None, 1)]) for _ in range(20)),
            service.take_out(owner, [(tee["productId"], None, 2), ("p_gone", None, 1)]),
        )

        # then no take-out was lost, and the line taken down to nothing went
        assert await stored_lines(shop, user_id=user_id) == [(mug["productId"], None, 10)]
        assert lines_of(await cart(shop, user)) == [(mug["productId"], None, 10)]

    @pytest.mark.parametrize("cart_settings", [{"cart_max_lines": 5, **POOL}])
    @pytest.mark.parametrize("existing", [0, 2], ids=["new-cart", "cart-with-two-lines"])
    async def test_writes_at_once_past_the_line_limit_never_exceed_it(self, shop: Shop, existing: int) -> None:
        # given
        _, admin = await shop.admin()
        products = [await simple_product(shop, admin, name=f"P{n:02}") for n in range(20 + existing)]
        user_id, user = await shop.user()
        for product in products[:existing]:
            await set_ok(shop, line(product, 1), user)

        # when
        responses = await asyncio.gather(*(set_item(shop, line(p, 1), user) for p in products[existing:]))

        # then
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * (5 - existing) + [409] * (15 + existing), [r.text for r in responses]
        assert {r.json()["code"] for r in responses if r.status_code == 409} == {"CART_FULL"}
        stored = await stored_lines(shop, user_id=user_id)
        assert stored is not None
        assert len(stored) == 5
        assert len((await cart(shop, user))["items"]) == 5

    @pytest.mark.parametrize("cart_settings", [POOL])
    async def test_a_guest_and_two_merges_at_once_move_each_line_once(self, shop: Shop) -> None:
        # given
        _, admin = await shop.admin()
        mug = await simple_product(shop, admin, stock=50)
        user_id, user = await shop.user()
        await set_ok(shop, line(mug, 1), user)
        token, _ = await guest_line(shop, line(mug, 2))

        # when the same guest cart is merged twice at once
        responses = await asyncio.gather(*(merge(shop, user, {"cartToken": token}) for _ in range(2)))

        # then its lines were added once
        assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
        assert await stored_lines(shop, user_id=user_id) == [(mug["productId"], None, 3)]
        assert list(await stored_carts(shop)) == [user_id]
        assert (await shop.client.get(V1, headers={TOKEN: token})).json()["items"] == []


class TestLineKeys:
    """What a write reads before it is made (`CartStore.line_keys`): the key of each line the
    cart holds, as the full read shows them."""

    pytestmark = pytest.mark.parametrize("cart_backend", ALL_STORES)

    async def test_the_keys_of_a_users_and_a_guests_lines_and_none_without_a_cart(self, shop: Shop) -> None:
        # given a user without a cart, a product in two variants and one without
        _, admin = await shop.admin()
        tee = await product_for_sale(shop, admin, variants=[{"attributes": {"size": s}} for s in ("M", "L")])
        mug = await simple_product(shop, admin)
        user_id, user = await shop.user()
        service = cart_service(shop.platform)
        mine = Owner(user_id=user_id)
        now = shop.platform.clock.now()
        assert await service.store.line_keys(mine, now=now) == []

        # when the user sets three lines and removes one, and a guest sets one
        for body in (line(tee, 1, 0), line(mug, 2), line(tee, 3, 1), line(tee, 0, 0)):
            await set_ok(shop, body, user)
        token, _ = await guest_line(shop, line(mug, 1))

        # then each store names the lines left, as the cart shows them
        keys = await service.store.line_keys(mine, now=now)
        shown = [(p, v) for p, v, _ in lines_of(await cart(shop, user))]
        assert sorted((k.product_id, k.variant_id) for k in keys) == sorted(shown)
        assert sorted(shown) == sorted([(mug["productId"], None), (tee["productId"], variant_id(tee, 1))])
        guest = service.guest(token)
        assert await service.store.line_keys(guest, now=now) == [LineKey(mug["productId"], None)]
