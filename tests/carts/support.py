"""Helpers for the cart tests: products for sale (made, published and stocked through the
catalog and inventory APIs), the cart API's requests, and what either cart store holds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import select

from tests.conftest import Shop
from tienda.carts.models import Cart, CartItem
from tienda.carts.service import CART_TOKEN
from tienda.platform.auth import Role

V1 = "/api/v1/carts"
ALIAS = "/api/carts"
TOKEN = "X-Cart-Token"

CART_FIELDS = {"cartId", "userId", "items", "itemCount", "totalAmount", "currency", "hasUnavailableItems"}
LINE_FIELDS = {
    "itemId",
    "productId",
    "variantId",
    "sku",
    "name",
    "attributes",
    "image",
    "quantity",
    "unitPrice",
    "lineTotal",
    "availableQuantity",
    "available",
    "status",
    "addedAt",
}
ENVELOPE_FIELDS = {"timestamp", "status", "error", "message", "path", "code", "requestId"}


async def product_for_sale(
    shop: Shop,
    admin: dict[str, str],
    *,
    name: str = "Men's T-Shirt",
    price: float | str = 499.0,
    variants: list[dict[str, Any]] | None = None,
    stock: int | list[int] = 10,
    publish: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """A published product (by default one variant) with `stock` units of each variant (or
    the list's, variant by variant); returns its ProductDTO. `extra` goes into the create body."""
    body: dict[str, Any] = {"name": name, "price": price, **extra}
    body["variants"] = variants if variants is not None else [{"attributes": {"color": "red", "size": "M"}}]
    response = await shop.client.post("/api/v1/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    if publish:
        response = await shop.client.post(f"/api/v1/products/{product['productId']}/publish", headers=admin)
        assert response.status_code == 200, response.text
    counts = stock if isinstance(stock, list) else [stock] * max(len(product["variants"]), 1)
    targets = [v["variantId"] for v in product["variants"]] or [None]
    for variant_id, units in zip(targets, counts, strict=True):
        if units:
            adjust: dict[str, Any] = {"productId": product["productId"], "delta": units, "reason": "Opening stock"}
            if variant_id:
                adjust["variantId"] = variant_id
            response = await shop.client.post("/api/v1/inventory/adjust", json=adjust, headers=admin)
            assert response.status_code == 200, response.text
    return product


async def simple_product(
    shop: Shop, admin: dict[str, str], *, name: str = "Mug", price: float | str = 250.5, stock: int = 10, **extra: Any
) -> dict[str, Any]:
    """A published product without variants."""
    return await product_for_sale(shop, admin, name=name, price=price, variants=[], stock=stock, **extra)


def line(product: dict[str, Any], quantity: Any, variant: int | None = 0) -> dict[str, Any]:
    """A POST /carts/items body for the product's `variant`-th variant (None: no variantId);
    a product without variants gets none either way."""
    body: dict[str, Any] = {"productId": product["productId"], "quantity": quantity}
    if variant is not None and product["variants"]:
        body["variantId"] = product["variants"][variant]["variantId"]
    return body


def variant_id(product: dict[str, Any], index: int = 0) -> str | None:
    return str(product["variants"][index]["variantId"]) if product["variants"] else None


async def set_item(shop: Shop, body: Any, headers: dict[str, str] | None = None, *, base: str = V1) -> httpx.Response:
    return await shop.client.post(f"{base}/items", json=body, headers=headers or {})


async def set_ok(shop: Shop, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await set_item(shop, body, headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def remove(shop: Shop, item_id: str, headers: dict[str, str] | None = None, *, base: str = V1) -> httpx.Response:
    return await shop.client.delete(f"{base}/items/{item_id}", headers=headers or {})


async def merge(
    shop: Shop, headers: dict[str, str], body: dict[str, Any] | None = None, *, base: str = V1
) -> httpx.Response:
    if body is None:
        return await shop.client.post(f"{base}/merge", headers=headers)
    return await shop.client.post(f"{base}/merge", json=body, headers=headers)


async def cart(shop: Shop, headers: dict[str, str] | None = None, *, base: str = V1) -> dict[str, Any]:
    response = await shop.client.get(base, headers=headers or {})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def guest_line(shop: Shop, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A guest's first write: (its cart token, the cart answered)."""
    response = await set_item(shop, body)
    assert response.status_code == 200, response.text
    return response.headers[TOKEN], response.json()


def decimals(response: httpx.Response) -> Any:
    """The body with every JSON number that has a fraction as a Decimal, to compare money exactly."""
    return json.loads(response.text, parse_float=Decimal)


def lines_of(body: dict[str, Any]) -> list[tuple[str, str | None, int]]:
    """(productId, variantId, quantity) of a cart's lines, in the order shown."""
    return [(i["productId"], i["variantId"], i["quantity"]) for i in body["items"]]


def assert_error(response: httpx.Response, status: int, code: str, path: str | None = None) -> dict[str, Any]:
    """The response is the error envelope with this status and code; returns the body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) - {"details"} == ENVELOPE_FIELDS, body
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["message"]
    assert body["path"] == (path or response.request.url.path)
    return body


# -- callers -------------------------------------------------------------------------------


def service_auth(shop: Shop) -> dict[str, str]:
    """The order service's Authorization header (role SERVICE), to reserve stock."""
    return {"Authorization": f"Bearer {shop.platform.tokens.issue('orders', Role.SERVICE).token}"}


def guest_cart_id(shop: Shop, token: str) -> str:
    """The guest cart a cart token names."""
    cart_id = shop.platform.tokens.read(CART_TOKEN, token)
    assert cart_id is not None
    return cart_id


# -- catalog and inventory changes -----------------------------------------------------------


async def reserve(shop: Shop, order_id: str, product: dict[str, Any], quantity: int, variant: int = 0) -> None:
    item: dict[str, Any] = {"productId": product["productId"], "quantity": quantity}
    if product["variants"]:
        item["variantId"] = product["variants"][variant]["variantId"]
    response = await shop.client.post(
        "/api/v1/inventory/reserve", json={"orderId": order_id, "items": [item]}, headers=service_auth(shop)
    )
    assert response.status_code == 200, response.text


async def admin_call(shop: Shop, admin: dict[str, str], method: str, url: str, **kwargs: Any) -> httpx.Response:
    response = await shop.client.request(method, url, headers=admin, **kwargs)
    assert response.status_code in (200, 204), response.text
    return response


# -- what the store holds ------------------------------------------------------------------


@dataclass(frozen=True)
class StoredCart:
    cart_id: str
    lines: list[tuple[str, str, str | None, int]]
    """(itemId, productId, variantId, quantity), oldest first."""


def owner_key(*, user_id: str | None = None, guest: str | None = None) -> str:
    """The key of a cart in `stored_carts`: the user id, or `guest:{cartId}`."""
    return user_id if user_id is not None else f"guest:{guest}"


def redis_client(shop: Shop) -> Redis:
    assert shop.settings.redis_url is not None
    return Redis.from_url(shop.settings.redis_url)


async def stored_carts(shop: Shop) -> dict[str, StoredCart]:
    """Every cart the configured store holds, by `owner_key`."""
    if shop.settings.cart_store == "redis":
        return {key: _from_hash(fields) for key, (fields, _) in (await _redis_carts(shop)).items()}
    carts, items = await _sql_rows(shop)
    found: dict[str, StoredCart] = {}
    for c in carts:
        key = owner_key(user_id=c["user_id"], guest=c["cart_id"])
        mine = sorted((i for i in items if i["cart_id"] == c["id"]), key=lambda i: (i["added_at"], i["id"]))
        found[key] = StoredCart(
            c["cart_id"], [(i["item_id"], i["product_id"], i["variant_id"] or None, i["quantity"]) for i in mine]
        )
    return found


async def stored_lines(
    shop: Shop, *, user_id: str | None = None, guest: str | None = None
) -> list[tuple[str, str | None, int]] | None:
    """(productId, variantId, quantity) of one cart's stored lines, oldest first; None: no cart."""
    found = (await stored_carts(shop)).get(owner_key(user_id=user_id, guest=guest))
    return None if found is None else [(p, v, q) for _, p, v, q in found.lines]


async def snapshot(shop: Shop) -> Any:
    """Everything the cart store holds, timestamps and expiries included, to show that a
    refused request changed nothing."""
    if shop.settings.cart_store == "redis":
        return await _redis_carts(shop)
    carts, items = await _sql_rows(shop)
    return sorted(carts, key=lambda c: c["id"]), sorted(items, key=lambda i: i["id"])


async def _sql_rows(shop: Shop) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of carts and cart_items, read through the typed tables (aware UTC on every database)."""
    async with shop.platform.db("carts").engine.connect() as conn:
        carts = [dict(r._mapping) for r in await conn.execute(select(Cart.__table__))]
        items = [dict(r._mapping) for r in await conn.execute(select(CartItem.__table__))]
    return carts, items


async def _redis_carts(shop: Shop) -> dict[str, tuple[dict[str, Any], bool]]:
    """Each cart hash under `{prefix}cart:` by owner key: its fields (decoded) and whether it has a TTL."""
    prefix = f"{shop.settings.redis_prefix}cart:"
    client = redis_client(shop)
    try:
        found: dict[str, tuple[dict[str, Any], bool]] = {}
        async for raw in client.scan_iter(match=f"{prefix}*"):
            key = raw.decode()
            fields = {k.decode(): v.decode() for k, v in (await client.hgetall(key)).items()}
            found[key.removeprefix(prefix)] = (fields, await client.ttl(key) > 0)
        return found
    finally:
        await client.aclose()


def _from_hash(fields: dict[str, str]) -> StoredCart:
    lines = []
    for name, value in fields.items():
        if name == "#cart":
            continue
        product_id, _, variant = name.partition("/")
        each = json.loads(value)
        lines.append(((each["t"], each.get("n", 0)), each["id"], product_id, variant or None, int(each["q"])))
    lines.sort(key=lambda x: x[0])  # added at, then the order lines came in
    return StoredCart(fields.get("#cart", ""), [(i, p, v, q) for _, i, p, v, q in lines])
