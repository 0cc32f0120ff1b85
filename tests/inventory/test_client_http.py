"""The inventory client over HTTP: the inventory service alone on its own database
(tests/services.py), asked by a process that does not run it (as the orders and carts services
ask it). Answers and refusals are those of the in-process client on the same database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.services import Service, bearer, caller, serve
from tienda.inventory.client import (
    HttpInventoryClient,
    InProcessInventoryClient,
    Shortage,
    StockGone,
    StockLine,
    StockShort,
    inventory_client,
)
from tienda.inventory.module import MODULE as INVENTORY
from tienda.platform.auth import Role
from tienda.platform.runtime import Platform

TTL = timedelta(minutes=15)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    served = serve([INVENTORY], tmp_path_factory.mktemp("inventory-service"))
    yield served
    served.stop()


@pytest.fixture
async def here(service: Service) -> AsyncIterator[Platform]:
    platform = service.local()
    yield platform
    await platform.close()


@pytest.fixture
def local(here: Platform) -> InProcessInventoryClient:
    return InProcessInventoryClient(here)


@pytest.fixture
async def inventory(tmp_path: Path, service: Service) -> AsyncIterator[HttpInventoryClient]:
    platform = caller(tmp_path / "orders", inventory_url=service.url)
    client = inventory_client(platform)
    assert isinstance(client, HttpInventoryClient)
    yield client
    await platform.close()


async def stocked(service: Service, here: Platform, units: int, variant_id: str | None = None) -> str:
    """A new product with `units` in stock (of `variant_id`, if given)."""
    product_id = f"p_{uuid.uuid4().hex[:10]}"
    body = {"productId": product_id, "delta": units, "reason": "Restock from supplier"}
    if variant_id is not None:
        body["variantId"] = variant_id
    async with httpx.AsyncClient(base_url=service.url) as admin:
        response = await admin.post("/api/v1/inventory/adjust", json=body, headers=bearer(here, "u_admin", Role.ADMIN))
    assert response.status_code == 200, response.text
    return product_id


def order() -> str:
    return f"ord_20260101_{uuid.uuid4().hex[:6]}"


class TestAvailable:
    async def test_answers_each_stocked_item_as_the_in_process_client_does(
        self, service: Service, here: Platform, inventory: HttpInventoryClient, local: InProcessInventoryClient
    ) -> None:
        plain = await stocked(service, here, 7)
        shirt = await stocked(service, here, 3, "v_red")
        async with httpx.AsyncClient(base_url=service.url) as admin:
            await admin.post(
                "/api/v1/inventory/adjust",
                json={"productId": shirt, "variantId": "v_blue", "delta": 2, "reason": "Restock from supplier"},
                headers=bearer(here, "u_admin", Role.ADMIN),
            )

        available = await inventory.available([plain, shirt, "p_unstocked"])

        assert available == await local.available([plain, shirt, "p_unstocked"])
        assert available == {(plain, None): 7, (shirt, "v_red"): 3, (shirt, "v_blue"): 2}

    async def test_of_nothing_is_nothing(self, inventory: HttpInventoryClient) -> None:
        assert await inventory.available([]) == {}


class TestReserve:
    async def test_holds_every_line_until_the_ttl_and_the_same_hold_when_asked_again(
        self, service: Service, here: Platform, inventory: HttpInventoryClient
    ) -> None:
        product = await stocked(service, here, 5)
        order_id = order()
        before = datetime.now(UTC)

        expires_at = await inventory.reserve(order_id, [StockLine(product, None, 2)], ttl=TTL)
        again = await inventory.reserve(order_id, [StockLine(product, None, 2)], ttl=TTL)

        assert expires_at.tzinfo is not None
        assert before + TTL <= expires_at <= datetime.now(UTC) + TTL
        assert again == expires_at
        assert await inventory.available([product]) == {(product, None): 3}

    async def test_too_much_is_stock_short_naming_the_lines_as_in_process_and_holds_nothing(
        self, service: Service, here: Platform, inventory: HttpInventoryClient, local: InProcessInventoryClient
    ) -> None:
        enough = await stocked(service, here, 5)
        scarce = await stocked(service, here, 1)
        lines = [StockLine(enough, None, 2), StockLine(scarce, None, 3), StockLine("p_unstocked", None, 1)]

        with pytest.raises(StockShort) as over_http:
            await inventory.reserve(order(), lines, ttl=TTL)
        with pytest.raises(StockShort) as in_process:
            await local.reserve(order(), lines, ttl=TTL)

        assert over_http.value.lines == in_process.value.lines
        assert len(over_http.value.lines) == 2
        assert all(isinstance(line, Shortage) and line.message for line in over_http.value.lines)
        assert str(over_http.value) == str(in_process.value)
        assert await inventory.available([enough, scarce]) == {(enough, None): 5, (scarce, None): 1}


class TestReleaseCommitGiveBack:
    async def test_release_gives_the_held_units_back_and_again_changes_nothing(
        self, service: Service, here: Platform, inventory: HttpInventoryClient
    ) -> None:
        product = await stocked(service, here, 4)
        order_id = order()
        await inventory.reserve(order_id, [StockLine(product, None, 3)], ttl=TTL)

        await inventory.release(order_id)
        await inventory.release(order_id)
        await inventory.release(order())  # an order that holds nothing

        assert await inventory.available([product]) == {(product, None): 4}

    async def test_commit_sells_the_held_units_once(
        self, service: Service, here: Platform, inventory: HttpInventoryClient
    ) -> None:
        product = await stocked(service, here, 4)
        order_id = order()
        await inventory.reserve(order_id, [StockLine(product, None, 3)], ttl=TTL)

        await inventory.commit(order_id)
        await inventory.commit(order_id)
        await inventory.release(order_id)  # sold units are not released

        assert await inventory.available([product]) == {(product, None): 1}

    async def test_commit_of_what_was_released_or_never_held_is_stock_gone(
        self, service: Service, here: Platform, inventory: HttpInventoryClient, local: InProcessInventoryClient
    ) -> None:
        product = await stocked(service, here, 2)
        released = order()
        await inventory.reserve(released, [StockLine(product, None, 1)], ttl=TTL)
        await inventory.release(released)

        for order_id in (released, order()):
            with pytest.raises(StockGone) as over_http:
                await inventory.commit(order_id)
            with pytest.raises(StockGone) as in_process:
                await local.commit(order_id)
            assert str(over_http.value) == str(in_process.value) == order_id

        assert await inventory.available([product]) == {(product, None): 2}

    async def test_give_back_returns_the_sold_units_once(
        self, service: Service, here: Platform, inventory: HttpInventoryClient
    ) -> None:
        product = await stocked(service, here, 4)
        order_id = order()
        await inventory.reserve(order_id, [StockLine(product, None, 3)], ttl=TTL)
        await inventory.commit(order_id)

        await inventory.give_back(order_id)
        await inventory.give_back(order_id)
        await inventory.give_back(order())  # an order that bought nothing

        assert await inventory.available([product]) == {(product, None): 4}
