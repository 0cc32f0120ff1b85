"""Helpers for the users tests: what an error answer must look like, and what is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text

from tests.conftest import Shop

ENVELOPE_KEYS = {"timestamp", "status", "error", "message", "path", "code", "requestId"}

PASSWORD = "P@ssw0rd!"

ADDRESS = {
    "label": "home",
    "line1": "12 MG Road",
    "city": "Bengaluru",
    "state": "Karnataka",
    "postalCode": "560001",
    "country": "IN",
    "phone": "9876543210",
}


def assert_error(
    response: httpx.Response,
    status: int,
    code: str,
    *,
    message: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The answer is `status` in the error envelope, with `code`, the request's path and an
    `X-Request-ID` header that the body repeats. Returns the body for further checks."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body.keys() >= ENVELOPE_KEYS, body
    assert set(body) - ENVELOPE_KEYS <= {"details"}, body
    assert body["status"] == status
    assert body["code"] == code
    assert body["path"] == response.request.url.path
    if error is not None:
        assert body["error"] == error
    if message is not None:
        assert body["message"] == message
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    assert response.headers["x-request-id"]
    assert body["requestId"] == response.headers["x-request-id"]
    return body


def fields(body: dict[str, Any]) -> list[str]:
    """The `field` of each entry of an error's `details`, sorted."""
    return sorted(detail["field"] for detail in body["details"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def count(shop: Shop, table: str, where: str = "1 = 1", **params: Any) -> int:
    return int(await shop.scalar("users", f"SELECT COUNT(*) FROM {table} WHERE {where}", **params))


async def password_hash(shop: Shop, user_id: str) -> str:
    return str(await shop.scalar("users", "SELECT password_hash FROM users WHERE user_id = :u", u=user_id))


async def events(shop: Shop, event_type: str) -> list[dict[str, Any]]:
    return await shop.events("users", event_type)


async def snapshot(shop: Shop) -> dict[str, Any]:
    """Everything the users module stores, to show a refused request changed nothing."""
    tables = {
        "users": "user_id, email, phone, password_hash, full_name, role, is_active, updated_at",
        "user_addresses": "address_id, label, line1, line2, city, state, postal_code, country, phone, is_default",
        "refresh_tokens": "token_hash, family_id, used_at, revoked_at",
        "password_reset_codes": "code_hash, attempts, used_at",
        "users_outbox_events": "event_id, type",
    }
    state: dict[str, Any] = {}
    async with shop.platform.db("users").engine.connect() as conn:
        for table, columns in tables.items():
            rows = await conn.execute(text(f"SELECT {columns} FROM {table} ORDER BY id"))
            state[table] = [tuple(row) for row in rows]
    return state
