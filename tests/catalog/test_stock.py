"""The catalog's copy of inventory's available units: what a product shows in `stock`, kept
from `inventory.updated` events that may come late, twice or not in order, and the
`product.availability_changed` it publishes when a product goes out of stock or comes back."""

from __future__ import annotations

import asyncio
import json
import random
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.catalog.support import admin, events, new_product, published_product, read_as_admin
from tests.conftest import Shop
from tests.inventory.support import adjust, line, post, reserve
from tests.platform.test_outbox import _statements_run
from tienda.catalog.models import Product, Variant
from tienda.catalog.stock import consumers
from tienda.catalog.wiring import catalog_service
from tienda.platform.events import Event, Subscription

TWO_SIZES = [
    {"sku": "TEE-M", "attributes": {"size": "M"}},
    {"sku": "TEE-L", "attributes": {"size": "L"}},
]
SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


async def public(shop: Shop, product_id: str) -> dict[str, Any]:
    response = await shop.client.get(f"/api/v1/products/{product_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stocks(product: dict[str, Any]) -> list[int]:
    return [v["stock"] for v in product["variants"]]


async def stored_copy(shop: Shop, variant_id: str) -> tuple[int, datetime | None]:
    """(stock_available, stock_updated_at) of a variant, through the typed table."""
    return await _stored(shop, Variant.__table__, Variant.__table__.c.variant_id == variant_id)


async def stored_product_copy(shop: Shop, product_id: str) -> tuple[int, datetime | None]:
    """(stock_available, stock_updated_at) of a product without variants."""
    return await _stored(shop, Product.__table__, Product.__table__.c.product_id == product_id)


async def _stored(shop: Shop, table: Any, where: Any) -> tuple[int, datetime | None]:
    async with shop.platform.db("catalog").engine.connect() as conn:
        row = (await conn.execute(select(table.c.stock_available, table.c.stock_updated_at).where(where))).one()
    return int(row[0]), row[1]


async def _handled(shop: Shop, event: Event) -> bool:
    """Whether the stock copy recorded the event as processed."""
    found = await shop.scalar(
        "catalog",
        "SELECT count(*) FROM catalog_processed_events WHERE consumer = 'catalog.stock_copy' AND event_id = :e",
        e=event.id,
    )
    return int(found) == 1


async def _a_sale(shop: Shop) -> tuple[str, Event]:
    """A product without variants, 4 in stock; one unit reserved (its event handled) a second
    later, and sold a second after that: the product's id and the sale's event, held back."""
    auth = await admin(shop)
    product = await published_product(shop, auth, variants=[])
    product_id = product["productId"]
    await adjust(shop, auth, product_id, 4)
    shop.clock.advance(seconds=1)
    await reserve(shop, auth, "ord_20261125_0003", line(product_id, 1))
    await shop.relay()
    shop.clock.advance(seconds=1)
    await post(shop, auth, "commit", {"orderId": "ord_20261125_0003"})
    [sold] = await held_back(shop)
    return product_id, sold


async def held_back(shop: Shop) -> list[Event]:
    """Inventory's undelivered events, oldest first, marked delivered so the relay leaves them
    to the test, which hands them to the bus in the order it wants."""
    table = shop.platform.db("inventory").outbox.outbox
    async with shop.platform.db("inventory").engine.begin() as conn:
        rows = (
            await conn.execute(
                select(table.c.id, table.c.event_id, table.c.type, table.c.occurred_at, table.c.payload)
                .where(table.c.published_at.is_(None))
                .order_by(table.c.id)
            )
        ).all()
        await conn.execute(update(table).where(table.c.published_at.is_(None)).values(published_at=shop.clock.now()))
    return [
        Event(id=r.event_id, type=r.type, source="inventory", occurred_at=r.occurred_at, payload=dict(r.payload))
        for r in rows
        if r.type == "inventory.updated"
    ]


class TestAProductShowsItsStock:
    async def test_variants_show_what_inventory_has_available(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth, variants=TWO_SIZES)
        product_id = product["productId"]
        medium, large = (v["variantId"] for v in product["variants"])
        assert stocks(await public(shop, product_id)) == [0, 0], "never stocked: none to buy"

        await adjust(shop, auth, product_id, 10, variant_id=medium)
        await reserve(shop, auth, "ord_20261125_0001", line(product_id, 3, medium))
        await shop.relay()

        shown = await public(shop, product_id)
        assert stocks(shown) == [7, 0]
        assert shown["stock"] == 7
        assert await read_as_admin(shop, auth, product_id) == shown
        assert (await stored_copy(shop, medium))[0] == 7
        assert await stored_copy(shop, large) == (0, None)

    async def test_a_product_without_variants_shows_its_own(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth, variants=[])

        await adjust(shop, auth, product["productId"], 4)
        await shop.relay()

        shown = await public(shop, product["productId"])
        assert shown["variants"] == []
        assert shown["stock"] == 4

    @SQLITE
    async def test_the_cached_detail_follows_at_once(self, shop: Shop, cache_backend: str) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth, variants=TWO_SIZES)
        product_id, medium = product["productId"], product["variants"][0]["variantId"]
        await public(shop, product_id)  # now in the cache
        assert await shop.platform.cache.get(f"catalog:product:{product_id}") is not None

        await adjust(shop, auth, product_id, 5, variant_id=medium)
        await shop.relay()

        cached = await shop.platform.cache.get(f"catalog:product:{product_id}")
        assert cached is not None
        assert stocks(await public(shop, product_id)) == [5, 0]
        assert cached == (await shop.client.get(f"/api/v1/products/{product_id}")).content

    @SQLITE
    async def test_a_change_refreshes_the_cached_detail_from_itself(self, shop: Shop, cache_backend: str) -> None:
        """With the product's current version cached, a new figure is written into the cached
        detail: the product, its variants, images and category are not read."""
        auth = await admin(shop)
        product = await published_product(shop, auth, variants=TWO_SIZES)
        product_id, medium, large = product["productId"], *(v["variantId"] for v in product["variants"])
        await adjust(shop, auth, product_id, 4, variant_id=large)
        await shop.relay()
        await public(shop, product_id)  # the current version, cached
        await adjust(shop, auth, product_id, 5, variant_id=medium)

        async with _statements_run([shop.platform.db("catalog")]) as taken:
            await shop.relay()
            run = await taken()

        assert not [s for s in run if "product_images" in s or "categories" in s], run
        cached = await shop.platform.cache.get(f"catalog:product:{product_id}")
        assert cached is not None
        assert stocks(json.loads(cached)) == [5, 4]
        assert json.loads(cached)["stock"] == 9
        await shop.platform.cache.delete(f"catalog:product:{product_id}")
        assert cached == (await shop.client.get(f"/api/v1/products/{product_id}")).content, "as if read whole"

    @SQLITE
    async def test_a_cached_detail_of_another_version_is_not_used(self, shop: Shop, cache_backend: str) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)
        product_id, variant = product["productId"], product["variants"][0]["variantId"]
        key = f"catalog:product:{product_id}"
        older = {**product, "name": "An older name", "updatedAt": "2020-01-01T00:00:00Z"}
        await shop.platform.cache.set(key, json.dumps(older).encode(), ttl=60)
        await adjust(shop, auth, product_id, 3, variant_id=variant)

        await shop.relay()

        cached = await shop.platform.cache.get(key)
        assert cached is not None
        assert json.loads(cached) == {**product, "variants": [{**product["variants"][0], "stock": 3}], "stock": 3}

    async def test_two_variants_changed_in_one_batch_both_show(self, shop: Shop) -> None:
        """Events handled in one unit of work, nothing cached: each reads the product whole,
        the second with the figure the first wrote and its own."""
        auth = await admin(shop)
        product = await published_product(shop, auth, variants=TWO_SIZES)
        product_id, medium, large = product["productId"], *(v["variantId"] for v in product["variants"])
        await adjust(shop, auth, product_id, 2, variant_id=medium)
        await adjust(shop, auth, product_id, 6, variant_id=large)
        both = await held_back(shop)
        await shop.platform.cache.delete(f"catalog:product:{product_id}")
        [copy] = [
            c
            for c in consumers(catalog_service(shop.platform), shop.platform.db("catalog"))
            if c.name == "catalog.stock_copy"
        ]

        assert await Subscription(copy, shop.platform.db("catalog")).deliver_many(both) == 2

        assert stocks(await public(shop, product_id)) == [2, 6]
        assert (await public(shop, product_id))["stock"] == 8

    async def test_an_unpublished_product_keeps_its_copy_and_publishes_nothing(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await new_product(shop, auth)
        variant = product["variants"][0]["variantId"]

        await adjust(shop, auth, product["productId"], 5, variant_id=variant)
        await shop.relay()

        assert stocks(await read_as_admin(shop, auth, product["productId"])) == [5]
        assert (await shop.client.get(f"/api/v1/products/{product['productId']}")).status_code == 404
        assert await events(shop, "product.availability_changed") == []

    async def test_items_the_catalog_does_not_know_are_skipped(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)

        await adjust(shop, auth, "p_nosuchproduct", 5)
        await adjust(shop, auth, product["productId"], 5, variant_id="v_nosuchvariant")
        await shop.relay()

        assert await public(shop, product["productId"]) == product
        assert await events(shop, "product.availability_changed") == []
        outbox = shop.platform.db("inventory").outbox.outbox
        async with shop.platform.db("inventory").engine.connect() as conn:
            undelivered = await conn.scalar(select(outbox.c.id).where(outbox.c.published_at.is_(None)))
        assert undelivered is None, "the consumer must not fail on them"


class TestEventsLateOrTwice:
    async def test_an_older_event_arriving_after_a_newer_one_is_ignored(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)
        product_id, variant = product["productId"], product["variants"][0]["variantId"]
        await adjust(shop, auth, product_id, 10, variant_id=variant)
        shop.clock.advance(seconds=1)
        await adjust(shop, auth, product_id, -4, variant_id=variant)
        older, newer = await held_back(shop)

        await shop.platform.bus.publish(newer)
        await shop.platform.bus.publish(older)

        assert stocks(await public(shop, product_id)) == [6]
        assert await stored_copy(shop, variant) == (6, newer.occurred_at)

    async def test_a_figure_that_did_not_change_still_counts_as_newer(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)
        product_id, variant = product["productId"], product["variants"][0]["variantId"]
        await adjust(shop, auth, product_id, 5, variant_id=variant)  # 5
        shop.clock.advance(seconds=1)
        await reserve(shop, auth, "ord_20261125_0002", line(product_id, 2, variant))  # 3
        shop.clock.advance(seconds=1)
        await post(shop, auth, "release", {"orderId": "ord_20261125_0002"})  # 5 again
        first, second, third = await held_back(shop)

        for event in (first, third, second):  # the reservation's event comes last
            await shop.platform.bus.publish(event)

        assert stocks(await public(shop, product_id)) == [5]
        assert await stored_copy(shop, variant) == (5, third.occurred_at)

    async def test_a_sale_is_left_alone(self, shop: Shop) -> None:
        """Committing a reservation moves units from reserved to sold: available stays, and
        its event (`availableChange` 0) is not even handled; the copy keeps the reservation's
        figure and time, and no processed row is written for it."""
        product_id, sold = await _a_sale(shop)
        before = await stored_product_copy(shop, product_id)
        assert (sold.payload["available"], sold.payload["availableChange"]) == (3, 0)

        await shop.platform.bus.publish(sold)

        assert (await public(shop, product_id))["stock"] == 3
        assert await stored_product_copy(shop, product_id) == before
        assert before[1] is not None
        assert before[1] < sold.occurred_at
        assert await _handled(shop, sold) is False

    async def test_a_figure_the_copy_holds_moves_its_time_on(self, shop: Shop) -> None:
        """An event that brings the figure the copy has (here a sale as published before
        `availableChange` existed) only moves the copy's time on."""
        product_id, sold = await _a_sale(shop)
        del sold.payload["availableChange"]

        await shop.platform.bus.publish(sold)

        assert (await public(shop, product_id))["stock"] == 3
        assert await stored_product_copy(shop, product_id) == (3, sold.occurred_at)
        assert await _handled(shop, sold) is True

    async def test_a_duplicate_event_is_ignored(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)
        product_id, variant = product["productId"], product["variants"][0]["variantId"]
        # The clock stands still: both events have one time, so only their ids tell them apart.
        await adjust(shop, auth, product_id, 10, variant_id=variant)
        await adjust(shop, auth, product_id, -4, variant_id=variant)
        first, second = await held_back(shop)
        await shop.platform.bus.publish(first)
        await shop.platform.bus.publish(second)
        assert stocks(await public(shop, product_id)) == [6]

        await shop.platform.bus.publish(first)  # delivered again, as at-least-once allows

        assert stocks(await public(shop, product_id)) == [6]
        assert await stored_copy(shop, variant) == (6, second.occurred_at)


class TestAvailabilityChanged:
    async def test_published_only_when_the_product_goes_out_of_or_back_in_stock(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth, variants=TWO_SIZES)
        product_id = product["productId"]
        medium, large = (v["variantId"] for v in product["variants"])

        await adjust(shop, auth, product_id, 2, variant_id=medium)
        await shop.relay()
        [came] = await events(shop, "product.availability_changed")
        assert came == {"productId": product_id, "product": await public(shop, product_id)}
        assert came["product"]["stock"] == 2

        await reserve(shop, auth, "ord_20261125_0003", line(product_id, 1, medium))
        await adjust(shop, auth, product_id, 3, variant_id=large)
        await shop.relay()
        assert len(await events(shop, "product.availability_changed")) == 1, "still in stock: nothing to say"

        await reserve(shop, auth, "ord_20261125_0004", line(product_id, 1, medium), line(product_id, 3, large))
        await shop.relay()
        went = (await events(shop, "product.availability_changed"))[1]
        assert went["product"]["stock"] == 0
        assert stocks(went["product"]) == [0, 0]

        await post(shop, auth, "release", {"orderId": "ord_20261125_0004"})
        await shop.relay()
        back = await events(shop, "product.availability_changed")
        assert len(back) == 3, "back in stock with the first unit released; the second says nothing"
        assert back[2]["product"]["stock"] > 0
        assert stocks(await public(shop, product_id)) == [1, 3]

    async def test_a_product_event_carries_the_stock_too(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth)
        await adjust(shop, auth, product["productId"], 8, variant_id=product["variants"][0]["variantId"])
        await shop.relay()

        response = await shop.client.put(f"/api/v1/products/{product['productId']}", json={"price": 450}, headers=auth)

        assert response.status_code == 200
        [updated] = await events(shop, "product.updated")
        assert updated["product"]["stock"] == 8
        assert stocks(updated["product"]) == [8]
        table = Product.__table__
        async with shop.platform.db("catalog").engine.connect() as conn:
            own = await conn.scalar(select(table.c.stock_available).where(table.c.product_id == product["productId"]))
        assert own == 0, "a product with variants keeps its stock on them"


def _on_the_copy(run: list[str]) -> list[str]:
    """The statements of a run that touch the copy or the consumer's processed rows."""
    return [s for s in run if re.search(r"\b(products|product_variants|catalog_processed_events)\b", s)]


async def _stocked(shop: Shop, units: int) -> tuple[dict[str, str], dict[str, Any], str, str]:
    """A published product of one variant, `units` of it in stock and in the copy (its event
    handled): the admin's auth, the product as created, its id and its variant's."""
    auth = await admin(shop)
    product = await published_product(shop, auth)
    product_id, variant = product["productId"], product["variants"][0]["variantId"]
    await adjust(shop, auth, product_id, units, variant_id=variant)
    await shop.relay()
    return auth, product, product_id, variant


async def _two_sizes_stocked(shop: Shop, medium_units: int, large_units: int) -> tuple[dict[str, str], str, str, str]:
    """A published product in two sizes, stocked and in the copy (their events handled): the
    admin's auth, the product's id and its two variants' (medium, large)."""
    auth = await admin(shop)
    product = await published_product(shop, auth, variants=TWO_SIZES)
    product_id, medium, large = product["productId"], *(v["variantId"] for v in product["variants"])
    await adjust(shop, auth, product_id, medium_units, variant_id=medium)
    await adjust(shop, auth, product_id, large_units, variant_id=large)
    await shop.relay()
    return auth, product_id, medium, large


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
class TestOneStatementOnPostgreSQL:
    """A figure that leaves an item in stock (the copy held units and still does) goes in one
    statement with its processed row; the cached detail takes the figures it read."""

    async def test_a_variant_still_in_stock_takes_its_figure_in_one_statement(self, shop: Shop) -> None:
        auth, product_id, medium, _ = await _two_sizes_stocked(shop, 10, 4)
        await public(shop, product_id)  # the current version, cached
        shop.clock.advance(seconds=1)
        await reserve(shop, auth, "ord_20261125_0005", line(product_id, 3, medium))
        [reserved] = await held_back(shop)

        async with _statements_run([shop.platform.db("catalog")]) as taken:
            await shop.platform.bus.publish(reserved)
            run = await taken()

        [statement] = _on_the_copy(run)
        assert statement.startswith("WITH head AS"), run
        assert "catalog_processed_events" in statement
        assert await stored_copy(shop, medium) == (7, reserved.occurred_at)
        assert await _handled(shop, reserved) is True
        cached = await shop.platform.cache.get(f"catalog:product:{product_id}")
        assert cached is not None
        assert (stocks(json.loads(cached)), json.loads(cached)["stock"]) == ([7, 4], 11)
        await shop.platform.cache.delete(f"catalog:product:{product_id}")
        assert cached == (await shop.client.get(f"/api/v1/products/{product_id}")).content, "as if read whole"
        assert len(await events(shop, "product.availability_changed")) == 1, "only when it came into stock"

    async def test_a_stale_figure_in_the_cached_detail_does_not_survive(self, shop: Shop) -> None:
        """The other variants' figures come from the database, read under their row locks, not
        from the cached detail."""
        auth, product_id, medium, _ = await _two_sizes_stocked(shop, 5, 5)
        key = f"catalog:product:{product_id}"
        cached = json.loads((await shop.client.get(f"/api/v1/products/{product_id}")).content)
        cached["variants"][1]["stock"] = 99  # a figure the cache missed
        await shop.platform.cache.set(key, json.dumps(cached).encode(), ttl=60)
        shop.clock.advance(seconds=1)
        await reserve(shop, auth, "ord_20261125_0008", line(product_id, 1, medium))

        async with _statements_run([shop.platform.db("catalog")]) as taken:
            await shop.relay()
            run = await taken()

        assert len(_on_the_copy(run)) == 1, run
        refreshed = json.loads(await shop.platform.cache.get(key) or b"{}")
        assert (stocks(refreshed), refreshed["stock"]) == ([4, 5], 9)

    async def test_a_product_without_variants_takes_its_own_figure_in_one_statement(self, shop: Shop) -> None:
        auth = await admin(shop)
        product = await published_product(shop, auth, variants=[])
        product_id = product["productId"]
        await adjust(shop, auth, product_id, 4)
        await shop.relay()
        shop.clock.advance(seconds=1)
        await reserve(shop, auth, "ord_20261125_0006", line(product_id, 1))
        [reserved] = await held_back(shop)

        async with _statements_run([shop.platform.db("catalog")]) as taken:
            await shop.platform.bus.publish(reserved)
            run = await taken()

        [statement] = _on_the_copy(run)
        assert " ".join(statement.split()).startswith("WITH m AS (UPDATE products SET"), run
        assert await stored_product_copy(shop, product_id) == (3, reserved.occurred_at)
        assert (await public(shop, product_id))["stock"] == 3

    async def test_delivered_again_it_changes_nothing(self, shop: Shop) -> None:
        auth, _, product_id, variant = await _stocked(shop, 10)
        shop.clock.advance(seconds=1)
        await adjust(shop, auth, product_id, -4, variant_id=variant)
        shop.clock.advance(seconds=1)
        await adjust(shop, auth, product_id, 1, variant_id=variant)
        first, second = await held_back(shop)
        await shop.platform.bus.publish(first)
        await shop.platform.bus.publish(second)
        count = "SELECT count(*) FROM catalog_processed_events WHERE consumer = 'catalog.stock_copy'"
        processed = await shop.scalar("catalog", count)

        await shop.platform.bus.publish(first)  # again, as at-least-once allows: not a newer figure

        assert await stored_copy(shop, variant) == (7, second.occurred_at)
        assert stocks(await public(shop, product_id)) == [7]
        assert await shop.scalar("catalog", count) == processed

    async def test_the_same_figure_twice_at_one_time_is_recorded_once(self, shop: Shop) -> None:
        """Its time equal to the copy's, a duplicate passes the statement's guards: its
        processed row refuses it, and nothing of it is written."""
        auth, _, product_id, variant = await _stocked(shop, 10)
        shop.clock.advance(seconds=1)
        await adjust(shop, auth, product_id, -4, variant_id=variant)
        [event] = await held_back(shop)
        [copy] = consumers(catalog_service(shop.platform), shop.platform.db("catalog"))
        subscription = Subscription(copy, shop.platform.db("catalog"))
        assert await subscription.deliver(event) is True

        assert await subscription.deliver(event) is False

        assert await stored_copy(shop, variant) == (6, event.occurred_at)

    async def test_a_cached_detail_of_another_version_is_dropped(self, shop: Shop) -> None:
        auth, product, product_id, variant = await _stocked(shop, 5)
        key = f"catalog:product:{product_id}"
        older = {**product, "name": "An older name", "updatedAt": "2020-01-01T00:00:00Z"}
        await shop.platform.cache.set(key, json.dumps(older).encode(), ttl=60)
        shop.clock.advance(seconds=1)
        await adjust(shop, auth, product_id, -2, variant_id=variant)

        async with _statements_run([shop.platform.db("catalog")]) as taken:
            await shop.relay()
            run = await taken()

        assert len(_on_the_copy(run)) == 1, run
        assert await shop.platform.cache.get(key) is None
        shown = await public(shop, product_id)
        assert (shown["name"], stocks(shown)) == (product["name"], [3])

    async def test_a_figure_that_empties_the_item_takes_the_unit_of_work(self, shop: Shop) -> None:
        """Out of stock, the product says so (`product.availability_changed`): not at once."""
        auth, _, product_id, variant = await _stocked(shop, 2)
        await reserve(shop, auth, "ord_20261125_0007", line(product_id, 2, variant))

        async with _statements_run([shop.platform.db("catalog")]) as taken:
            await shop.relay()
            run = await taken()

        assert len(_on_the_copy(run)) > 1, run
        went = (await events(shop, "product.availability_changed"))[-1]
        assert went["product"]["stock"] == 0


class TestEventsAtOnce:
    async def test_forty_figures_of_one_product_delivered_at_once_leave_each_variants_latest(self, shop: Shop) -> None:
        """Figures of two variants of one product (some in stock, some 0: both ways of taking
        them, on PostgreSQL) delivered concurrently and out of order, each from its own
        connection: no deadlock, none lost, and the copy and the product read whole end with
        each variant's latest figure. (The cached detail is refreshed after each commit; two
        refreshes may land in either order, and the next change mends it.)"""
        _, product_id, medium, large = await _two_sizes_stocked(shop, 5, 5)
        await public(shop, product_id)  # cached
        began = shop.clock.now()
        figures = {medium: [3, 0, 7, 6, 0, 2, 9, 8, 4, 1] * 2, large: [0, 4, 4, 5, 0, 0, 6, 2, 8, 3] * 2}
        sent = [
            Event(
                id=str(uuid.uuid4()),
                type="inventory.updated",
                source="inventory",
                occurred_at=began + timedelta(milliseconds=1 + 2 * n + (variant == large)),
                payload={"productId": product_id, "variantId": variant, "available": figure, "availableChange": 1},
            )
            for variant, each in figures.items()
            for n, figure in enumerate(each)
        ]
        random.Random(7).shuffle(sent)
        [copy] = consumers(catalog_service(shop.platform), shop.platform.db("catalog"))
        subscription = Subscription(copy, shop.platform.db("catalog"))

        delivered = await asyncio.gather(*(subscription.deliver(event) for event in sent))

        assert delivered == [True] * len(sent)
        latest = {
            v: max((e for e in sent if e.payload["variantId"] == v), key=lambda e: e.occurred_at) for v in figures
        }
        for variant, event in latest.items():
            assert await stored_copy(shop, variant) == (figures[variant][-1], event.occurred_at)
        await shop.platform.cache.delete(f"catalog:product:{product_id}")
        assert stocks(await public(shop, product_id)) == [figures[medium][-1], figures[large][-1]]
