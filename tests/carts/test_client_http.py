"""The carts client over HTTP, in a split deployment: catalog, inventory and carts each a
service of its own on its own database (tests/services.py); carts reaches the other two over
HTTP to price and check lines, and the orders process reaches carts. Answers are those of the
in-process client on the same database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import Service, bearer, caller, serve
from tienda.carts.client import CartLine, CheckoutCart, HttpCartsClient, InProcessCartsClient, carts_client
from tienda.carts.module import MODULE as CARTS
from tienda.catalog.module import MODULE as CATALOG
from tienda.inventory.module import MODULE as INVENTORY
from tienda.platform.auth import Role
from tienda.platform.runtime import Platform


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    root = tmp_path_factory.mktemp("split")
    catalog = serve([CATALOG], root / "catalog")
    inventory = serve([INVENTORY], root / "inventory")
    carts = serve([CARTS], root / "carts", catalog_url=catalog.url, inventory_url=inventory.url)
    yield {"catalog": catalog, "inventory": inventory, "carts": carts}
    for service in (carts, inventory, catalog):
        service.stop()


@pytest.fixture
async def local(services: dict[str, Service]) -> AsyncIterator[InProcessCartsClient]:
    platform = services["carts"].local()
    yield InProcessCartsClient(platform)
    await platform.close()


@pytest.fixture
async def orders(tmp_path: Path, services: dict[str, Service]) -> AsyncIterator[Platform]:
    platform = caller(tmp_path / "orders", carts_url=services["carts"].url)
    yield platform
    await platform.close()


@pytest.fixture
def carts(orders: Platform) -> HttpCartsClient:
    client = carts_client(orders)
    assert isinstance(client, HttpCartsClient)
    return client


async def call(service: Service, auth: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=service.url) as client:
        response = await client.post(path, json=body, headers=auth)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


async def for_sale(
    services: dict[str, Service], platform: Platform, *, variants: int = 0, stock: int = 10
) -> dict[str, Any]:
    """A published product (with `variants` variants), `stock` units of each in inventory."""
    admin = bearer(platform, "u_admin", Role.ADMIN)
    body: dict[str, Any] = {"name": "Men's T-Shirt", "price": 499, "brand": "BrandX"}
    if variants:
        body["variants"] = [{"attributes": {"size": str(n)}, "price": 499 + n} for n in range(variants)]
    created = await call(services["catalog"], admin, "/api/v1/products", body)
    product = await call(services["catalog"], admin, f"/api/v1/products/{created['productId']}/publish", {})
    for variant in product["variants"] or [None]:
        stocked = {"productId": product["productId"], "delta": stock, "reason": "Restock from supplier"}
        if variant:
            stocked["variantId"] = variant["variantId"]
        await call(services["inventory"], admin, "/api/v1/inventory/adjust", stocked)
    return product


async def buyer_with(
    services: dict[str, Service], platform: Platform, *lines: tuple[dict[str, Any], str | None, int]
) -> str:
    """A user who put these (product, variant id, quantity) in their cart, through carts' API."""
    user_id = f"u_{uuid.uuid4().hex[:10]}"
    auth = bearer(platform, user_id, Role.USER)
    for product, variant_id, quantity in lines:
        body: dict[str, Any] = {"productId": product["productId"], "quantity": quantity}
        if variant_id:
            body["variantId"] = variant_id
        await call(services["carts"], auth, "/api/v1/carts/items", body)
    return user_id


class TestCartOf:
    async def test_answers_the_users_lines_as_the_in_process_client_does(
        self, services: dict[str, Service], orders: Platform, carts: HttpCartsClient, local: InProcessCartsClient
    ) -> None:
        plain = await for_sale(services, orders)
        shirt = await for_sale(services, orders, variants=2)
        medium = shirt["variants"][1]["variantId"]
        user_id = await buyer_with(services, orders, (plain, None, 2), (shirt, medium, 1))

        cart = await carts.cart_of(user_id)

        assert cart == await local.cart_of(user_id)
        assert isinstance(cart, CheckoutCart)
        assert cart.cart_id.startswith("c_")
        assert cart.lines == [CartLine(plain["productId"], None, 2), CartLine(shirt["productId"], medium, 1)]

    async def test_no_cart_is_none(self, carts: HttpCartsClient) -> None:
        assert await carts.cart_of("u_nobody") is None


class TestRemoveLines:
    async def test_takes_out_what_the_order_holds_and_leaves_the_rest(
        self, services: dict[str, Service], orders: Platform, carts: HttpCartsClient
    ) -> None:
        tee = await for_sale(services, orders)
        mug = await for_sale(services, orders)
        user_id = await buyer_with(services, orders, (tee, None, 3), (mug, None, 1))

        await carts.remove_lines(user_id, [CartLine(tee["productId"], None, 2), CartLine(mug["productId"], None, 1)])

        cart = await carts.cart_of(user_id)
        assert cart is not None
        assert cart.lines == [CartLine(tee["productId"], None, 1)]

    async def test_taking_out_every_line_leaves_no_cart(
        self, services: dict[str, Service], orders: Platform, carts: HttpCartsClient
    ) -> None:
        tee = await for_sale(services, orders)
        user_id = await buyer_with(services, orders, (tee, None, 2))

        await carts.remove_lines(user_id, [CartLine(tee["productId"], None, 2)])
        await carts.remove_lines("u_nobody", [CartLine(tee["productId"], None, 2)])

        assert await carts.cart_of(user_id) is None
