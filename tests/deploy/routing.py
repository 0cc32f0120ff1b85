"""The gateway's routing table, shared by the nginx and the Kubernetes Ingress tests.

Every public route of a module answers under `/api/v1/...` and the `/api/...` alias; a few
are mounted at the root (`/media/...`). The gateway (nginx in compose, the Ingress in
Kubernetes) sends a path to the service owning the longest prefix of it below, compared
segment by segment. `/internal/...` routes are for services only: no prefix leads there.
`routes_of_the_app()` reads the real app's routers, so a route added to a module and not
to this table (or to nginx, or to the Ingress) fails the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tienda.app import ALIAS_PREFIX, ALL_MODULES, API_PREFIX

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

SERVICES: tuple[str, ...] = tuple(spec.name for spec in ALL_MODULES)
API_PREFIXES: tuple[str, ...] = (API_PREFIX, ALIAS_PREFIX)

API_ROUTES: dict[str, str] = {
    "/users": "users",
    "/products/search": "search",
    "/products/suggest": "search",
    "/products": "catalog",
    "/categories": "catalog",
    "/carts": "carts",
    "/inventory": "inventory",
    "/orders": "orders",
    "/coupons": "orders",
    "/payments": "payments",
    "/notifications": "notifications",
}
"""Resource prefix under both API prefixes -> owning service."""

ROOT_ROUTES: dict[str, str] = {"/media": "catalog"}
"""Prefixes mounted at the root -> owning service."""

INTERNAL_PREFIXES: tuple[str, ...] = ("/internal", "/api/internal", "/api/v1/internal")
"""Service-to-service routes: the gateway answers 404 under these."""

INTERNAL_SAMPLES: tuple[str, ...] = tuple(
    f"{prefix}{tail}" for prefix in INTERNAL_PREFIXES for tail in ("", "/", "/orders/ord_1")
)


def gateway_table() -> dict[str, str]:
    """Full path prefix -> service, every prefix the gateway routes."""
    table = {prefix + resource: service for prefix in API_PREFIXES for resource, service in API_ROUTES.items()}
    table.update(ROOT_ROUTES)
    return table


def segments(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def owner(path: str, table: dict[str, str] | None = None) -> str | None:
    """The service the longest matching prefix (segment-wise, like an Ingress `Prefix`) names."""
    parts = segments(path)
    best: tuple[int, str] | None = None
    for prefix, service in (table or gateway_table()).items():
        head = segments(prefix)
        if parts[: len(head)] == head and (best is None or len(head) > best[0]):
            best = (len(head), service)
    return best[1] if best else None


@dataclass(frozen=True)
class Route:
    module: str
    method: str
    template: str
    """As mounted, e.g. /api/v1/products/{productId}."""

    @property
    def sample(self) -> str:
        """A concrete path of the template: each parameter becomes `<name>-1`."""
        return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", lambda m: f"{m.group(1)}-1", self.template)


def is_internal(path: str) -> bool:
    parts = segments(path)
    return any(parts[: len(segments(prefix))] == segments(prefix) for prefix in INTERNAL_PREFIXES)


def routes_of_the_app() -> list[Route]:
    """Every public route of every module, as the app mounts it (both API prefixes, root routers)."""
    return [route for route in _all_routes() if not is_internal(route.template)]


def internal_routes_of_the_app() -> list[Route]:
    """The service-to-service routes (`/internal/...`), which the gateway must not reach."""
    return [route for route in _all_routes() if is_internal(route.template)]


def _all_routes() -> list[Route]:
    routes: list[Route] = []
    for spec in ALL_MODULES:
        for router in spec.routers:
            for route in router.routes:
                method = sorted(getattr(route, "methods", None) or {"GET"})[0]
                path = getattr(route, "path", "")
                routes.extend(Route(spec.name, method, prefix + path) for prefix in API_PREFIXES)
        for router in spec.root_routers:
            for route in router.routes:
                method = sorted(getattr(route, "methods", None) or {"GET"})[0]
                routes.append(Route(spec.name, method, getattr(route, "path", "")))
    return routes
