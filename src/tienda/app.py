"""Builds the ASGI app for a deployment: which modules, on which platform."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute

from tienda import __version__
from tienda.carts.module import MODULE as CARTS
from tienda.catalog.module import MODULE as CATALOG
from tienda.inventory.module import MODULE as INVENTORY
from tienda.notifications.module import MODULE as NOTIFICATIONS
from tienda.orders.module import MODULE as ORDERS
from tienda.payments.module import MODULE as PAYMENTS
from tienda.platform import web
from tienda.platform.clock import Clock
from tienda.platform.modules import ModuleSpec
from tienda.platform.observability import HttpMetrics, configure_logging, native_telemetry
from tienda.platform.runtime import Platform, settle_collector
from tienda.search.module import MODULE as SEARCH
from tienda.settings import Settings
from tienda.users.module import MODULE as USERS

# Search before the catalog: `/products/search` must win over `/products/{productId}`.
ALL_MODULES: tuple[ModuleSpec, ...] = (USERS, SEARCH, CATALOG, CARTS, INVENTORY, ORDERS, PAYMENTS, NOTIFICATIONS)

API_PREFIX = "/api/v1"
ALIAS_PREFIX = "/api"

DESCRIPTION = """
Tienda is an e-commerce backend: users and auth, catalog, carts, inventory, orders,
payments, notifications and search.

Every route answers under `/api/v1/...` and, unchanged, under the `/api/...` alias.
Errors always come in one envelope: `{timestamp, status, error, message, path, code,
requestId, details?}`. Authenticate with `Authorization: Bearer <accessToken>` from
`POST /api/v1/users/login`.
"""


def select_modules(names: Sequence[str] | None) -> tuple[ModuleSpec, ...]:
    if not names:
        return ALL_MODULES
    known = {m.name: m for m in ALL_MODULES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown module(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(known[n] for n in names)


def build_platform(
    settings: Settings, *, modules: Sequence[ModuleSpec] = ALL_MODULES, clock: Clock | None = None
) -> Platform:
    return Platform.build(settings, modules, clock=clock)


def create_app(
    settings: Settings | None = None,
    *,
    platform: Platform | None = None,
    modules: Sequence[ModuleSpec] = ALL_MODULES,
    migrate: bool = False,
) -> FastAPI:
    """The app. Given a `platform`, the caller owns it (tests); otherwise the app builds its
    own at startup, runs the outbox relay when configured to, and closes it at shutdown."""
    settings = settings or (platform.settings if platform else Settings())
    configure_logging(json=settings.json_logs, level=settings.log_level)
    owned = platform is None
    metrics = HttpMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owned:
            app.state.platform = build_platform(settings, modules=modules)
        current: Platform = app.state.platform
        if migrate:
            await current.migrate()
        if owned and settings.relays_in_process:
            current.relay.start()  # one process does it all (dev): its jobs run here too
            current.jobs.start()
        settle_collector()
        try:
            yield
        finally:
            if owned:
                await current.close()

    app = FastAPI(
        title="Tienda",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        telemetry=native_telemetry(),
        openapi_tags=[
            {"name": "users", "description": "Registration, sessions, passwords, profiles and addresses."},
            {"name": "catalog", "description": "Products with variants and images, categories, publishing."},
            {"name": "search", "description": "Full-text product search with facets, and autocomplete."},
            {"name": "inventory", "description": "Stock per product and variant; reservations that never oversell."},
            {"name": "payments", "description": "Payments through a gateway, its signed webhooks, refunds."},
            {"name": "notifications", "description": "E-mail and SMS to buyers and admins, retried until sent."},
            {"name": "operations", "description": "Health, readiness and metrics."},
        ],
    )
    if platform is not None:
        app.state.platform = platform
    web.install(
        app,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        access_log=settings.env != "test",
        cached_reads=tuple(read for spec in modules for read in spec.cached_reads),
        cached_queries=tuple(query for spec in modules for query in spec.cached_queries),
        prefixes=(API_PREFIX, ALIAS_PREFIX),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    app.router.routes.extend(module_routes(modules))
    web.include_flat(
        app.router,
        web.ops_router(
            lambda: app.state.platform.checks(), metrics, multiprocess=settings.metrics_multiprocess_dir is not None
        ),
    )
    routes = web.index_routes(app)
    _document_errors_as_they_are(app, routes)
    return app


_MODULE_ROUTES: dict[tuple[str, ...], tuple[BaseRoute, ...]] = {}


def module_routes(modules: Sequence[ModuleSpec]) -> tuple[BaseRoute, ...]:
    """The modules' routes, under `/api/v1`, under the `/api` alias and at the root, built once
    per process. Building them is FastAPI's analysis of every endpoint's signature and models
    (0.12 s of CPU for the shop's 135 routes on a fast host, against 2 ms for the rest of
    `create_app`; 0.3-0.5 s on a slow one); none of it depends on the settings or
    the platform, which a handler finds on `request.app.state`. So every app of the process (one
    in a server; one per test in the suites) shares the same route objects. They are built on a
    bare router: dependency overrides, which the shop does not use, would not reach them."""
    key = tuple(spec.name for spec in modules)
    if key in _MODULE_ROUTES:
        return _MODULE_ROUTES[key]
    router = APIRouter()
    for spec in modules:
        for api in spec.routers:
            web.include_flat(router, api, prefix=API_PREFIX)
            web.include_flat(router, api, prefix=ALIAS_PREFIX, include_in_schema=False)
        for api in spec.root_routers:
            web.include_flat(router, api)
    routes = _MODULE_ROUTES[key] = tuple(router.routes)
    return routes


def _document_errors_as_they_are(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """FastAPI documents a 422 `HTTPValidationError` on every route; ours answer 400 with the
    error envelope (already listed per route), so the schema says what really happens."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=routes,
                tags=app.openapi_tags,
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            components = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
