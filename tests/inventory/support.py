"""Helpers for the inventory tests: callers (admin, the order service, a plain user), the
requests of the inventory API, and reading what inventory stored and published."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from tests.conftest import Shop
from tienda.inventory.models import Reservation
from tienda.platform.auth import Role

V1 = "/api/v1/inventory"
ALIAS = "/api/inventory"

STOCK_FIELDS = {"productId", "stockCount", "reserved", "available", "variants"}
VARIANT_FIELDS = {"variantId", "stockCount", "reserved", "available", "threshold", "updatedAt"}
RESERVATION_FIELDS = {"orderId", "status", "expiresAt", "items"}
ITEM_FIELDS = {"productId", "variantId", "quantity", "status"}


def service_auth(shop: Shop, subject: str = "orders") -> dict[str, str]:
    """The Authorization header of the order service (role SERVICE)."""
    token = shop.platform.tokens.issue(subject, Role.SERVICE).token
    return {"Authorization": f"Bearer {token}"}


def line(product_id: str, quantity: int, variant_id: str | None = None) -> dict[str, Any]:
    """One item of a reserve or release body."""
    item: dict[str, Any] = {"productId": product_id, "quantity": quantity}
    if variant_id is not None:
        item["variantId"] = variant_id
    return item


async def adjust(
    shop: Shop,
    auth: dict[str, str],
    product_id: str,
    delta: int,
    *,
    variant_id: str | None = None,
    reason: str = "Restock from supplier",
    threshold: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"productId": product_id, "delta": delta, "reason": reason}
    if variant_id is not None:
        body["variantId"] = variant_id
    if threshold is not None:
        body["threshold"] = threshold
    response = await shop.client.post(f"{V1}/adjust", json=body, headers=auth)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def reserve(
    shop: Shop, auth: dict[str, str], order_id: str, *items: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    response = await shop.client.post(
        f"{V1}/reserve", json={"orderId": order_id, "items": list(items), **extra}, headers=auth
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def post(shop: Shop, auth: dict[str, str], action: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST /inventory/{action} that must answer 200; returns the body."""
    response = await shop.client.post(f"{V1}/{action}", json=body, headers=auth)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def stock(shop: Shop, product_id: str) -> dict[str, Any]:
    response = await shop.client.get(f"{V1}/{product_id}")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def rows(shop: Shop, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with shop.platform.db("inventory").engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(text(sql), params)]


async def count(shop: Shop, table: str, where: str = "1 = 1", **params: Any) -> int:
    return int(await shop.scalar("inventory", f"SELECT COUNT(*) FROM {table} WHERE {where}", **params))


async def stored_item(shop: Shop, product_id: str, variant_id: str = "") -> tuple[int, int, int] | None:
    """(stock_count, reserved_count, threshold) as stored; variant "" is product-level stock."""
    found = await rows(
        shop,
        "SELECT stock_count, reserved_count, threshold FROM inventory WHERE product_id = :p AND variant_id = :v",
        p=product_id,
        v=variant_id,
    )
    if not found:
        return None
    [(stock_count, reserved, threshold)] = found
    return int(stock_count), int(reserved), int(threshold)


async def stored_reservations(shop: Shop, order_id: str) -> list[tuple[str, str, int, str]]:
    """(product_id, variant_id, quantity, status) of an order's stored reservations."""
    found = await rows(
        shop,
        "SELECT product_id, variant_id, quantity, status FROM inventory_reservations WHERE order_id = :o "
        "ORDER BY product_id, variant_id",
        o=order_id,
    )
    return [(str(p), str(v), int(q), str(s)) for p, v, q, s in found]


async def stored_expiry(shop: Shop, order_id: str) -> datetime:
    """The one expiry of an order's reservations, read through the typed table (aware UTC everywhere)."""
    table = Reservation.__table__
    async with shop.platform.db("inventory").engine.connect() as conn:
        found = await conn.execute(select(table.c.expires_at).where(table.c.order_id == order_id).distinct())
        expiry: datetime = found.scalar_one()
        return expiry


async def movements(shop: Shop, kind: str | None = None) -> list[tuple[Any, ...]]:
    """(product_id, variant_id, kind, stock_delta, reserved_delta, reason, order_id, actor), oldest first."""
    where, params = ("WHERE kind = :k", {"k": kind}) if kind else ("", {})
    found = await rows(
        shop,
        "SELECT product_id, variant_id, kind, stock_delta, reserved_delta, reason, order_id, actor "
        f"FROM inventory_movements {where} ORDER BY id",
        **params,
    )
    return [(p, v, k, int(sd), int(rd), reason, o, a) for p, v, k, sd, rd, reason, o, a in found]


async def events(shop: Shop, event_type: str = "inventory.updated") -> list[dict[str, Any]]:
    return await shop.events("inventory", event_type)


async def low_stock(shop: Shop) -> list[dict[str, Any]]:
    return await shop.events("inventory", "inventory.low_stock")


def payload(
    product_id: str, variant_id: str | None, stock_count: int, reserved: int, threshold: int, *, change: int
) -> dict[str, Any]:
    """An `inventory.updated` / `inventory.low_stock` payload (`change`: of available, by this change)."""
    return {
        "productId": product_id,
        "variantId": variant_id,
        "stockCount": stock_count,
        "reserved": reserved,
        "available": stock_count - reserved,
        "availableChange": change,
        "threshold": threshold,
    }


async def snapshot(shop: Shop) -> dict[str, Any]:
    """Everything inventory stores, to show a refused request changed nothing."""
    tables = {
        "inventory": "product_id, variant_id, stock_count, reserved_count, threshold, updated_at",
        "inventory_reservations": "order_id, product_id, variant_id, quantity, status, expires_at, updated_at",
        "inventory_movements": "product_id, variant_id, kind, stock_delta, reserved_delta, reason, order_id, actor",
        "inventory_outbox_events": "event_id, type",
    }
    state: dict[str, Any] = {}
    for table, columns in tables.items():
        state[table] = await rows(shop, f"SELECT {columns} FROM {table} ORDER BY id")
    return state
