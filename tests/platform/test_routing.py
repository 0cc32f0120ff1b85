"""The route index (`web.IndexedRoutes`) answers every request as FastAPI's own router does."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from tienda.platform import web
from tienda.platform.observability import HttpMetrics


def _app(*, indexed: bool) -> FastAPI:
    app = FastAPI()
    web.install(app, metrics=HttpMetrics(), max_body_bytes=1024)
    items = APIRouter(prefix="/items")

    @items.get("/{itemId}")
    async def item(itemId: str) -> dict[str, str]:
        return {"route": "item", "itemId": itemId}

    @items.get("/special")  # after the parameter: never reached, as with the router
    async def special() -> dict[str, str]:
        return {"route": "special"}

    @items.post("/special/{n}")
    async def special_post(n: int) -> dict[str, object]:
        return {"route": "special_post", "n": n}

    @items.get("/a/b/c/d")
    async def deep() -> dict[str, str]:
        return {"route": "deep"}

    @items.get("/a/{x}/c")
    async def shallow(x: str) -> dict[str, str]:
        return {"route": "shallow", "x": x}

    tenants = APIRouter()

    @tenants.get("/{tenant}/home")
    async def home(tenant: str) -> dict[str, str]:
        return {"route": "home", "tenant": tenant}

    @tenants.put("/items/a/b/c/d")
    async def put_deep() -> dict[str, str]:
        return {"route": "put_deep"}

    for prefix in ("/api/v1", "/api"):
        web.include_flat(app.router, items, prefix=prefix)
        web.include_flat(app.router, tenants, prefix=prefix)
    web.include_flat(app.router, tenants)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"route": "healthz"}

    if indexed:
        web.index_routes(app)
    return app


REQUESTS = [
    ("GET", path)
    for prefix in ("/api/v1", "/api", "")
    for path in (
        f"{prefix}/items/i_1",
        f"{prefix}/items/special",
        f"{prefix}/items/a/b/c/d",
        f"{prefix}/items/a/zz/c",
        f"{prefix}/items/a/b/c",
        f"{prefix}/acme/home",
        f"{prefix}/items/",
        f"{prefix}/nowhere/at/all",
        f"{prefix}/items/i_1/",
        f"{prefix}//items/i_1",
    )
] + [
    ("POST", "/api/v1/items/special/3"),
    ("POST", "/api/v1/items/special/x"),
    ("GET", "/api/v1/items/special/3"),
    ("PUT", "/items/a/b/c/d"),
    ("DELETE", "/items/a/b/c/d"),
    ("PUT", "/api/items/a/b/c/d"),
    ("GET", "/healthz"),
    ("POST", "/healthz"),
    ("GET", "/healthz/"),
    ("GET", "/"),
    ("GET", "/docs"),  # a plain Starlette route (the document it points to is made apart: test_openapi.py)
]


@pytest.fixture
def backend() -> str:
    return "sqlite"


async def _answers(app: FastAPI) -> list[tuple[int, str, str | None, str | None]]:
    answers = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for method, path in REQUESTS:
            response = await client.request(method, path)
            body = response.text
            if response.headers.get("content-type", "").startswith("application/json") and "requestId" in body:
                body = str({k: v for k, v in response.json().items() if k not in ("timestamp", "requestId")})
            answers.append(
                (response.status_code, body, response.headers.get("allow"), response.headers.get("location"))
            )
    return answers


async def test_the_index_answers_as_the_router_does() -> None:
    plain, indexed = await _answers(_app(indexed=False)), await _answers(_app(indexed=True))

    for (method, path), theirs, ours in zip(REQUESTS, plain, indexed, strict=True):
        assert ours == theirs, f"{method} {path}"
    statuses = {status for status, *_ in indexed}
    assert {200, 400, 404, 405, 307} <= statuses  # the cases above do cover what they should


async def test_the_index_finds_a_route_whatever_its_place() -> None:
    app = _app(indexed=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/healthz")).json() == {"route": "healthz"}
        assert (await client.get("/api/items/a/b/c/d")).json() == {"route": "deep"}
        assert (await client.get("/api/v1/acme/home")).json() == {"route": "home", "tenant": "acme"}
        assert (await client.get("/zeta/home")).json() == {"route": "home", "tenant": "zeta"}
