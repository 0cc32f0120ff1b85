"""HTTP plumbing shared by every deployment: request ids, access logs, metrics, body limits,
the error envelope for every non-2xx answer, and the health, readiness and metrics routes.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette._utils import get_route_path
from starlette.datastructures import MutableHeaders, URLPath
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tienda.platform.auth import internal_principal
from tienda.platform.errors import AppError, ErrorDetail, envelope
from tienda.platform.observability import HttpMetrics, access_logger, get_logger

log = get_logger("tienda.http")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _SAFE_REQUEST_ID.match(candidate):
                return candidate
            break
    return _new_request_id()


# Request ids: 32 hex digits from a PRNG seeded from the OS in each process (and again in a
# forked child). An id has to be unique, not unpredictable, and `uuid4()` reads the kernel's
# random source on every request: a system call, 3-4% of a cached read's time.
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def _new_request_id() -> str:
    return f"{_ids.getrandbits(128):032x}"


def _route_template(scope: Scope) -> str:
    """The matched route's full path template (e.g. /api/v1/users/{userId}), so metrics have
    one series per route rather than per URL."""
    if _CACHED_ROUTE in scope:
        return str(scope[_CACHED_ROUTE])
    # A route of a router included with `include_router` (not `include_flat`) has its full
    # path on its effective route context.
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path", None) or getattr(scope.get("route"), "path", None)
    return str(path) if path else "<unmatched>"


def _json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


class RequestContextMiddleware:
    """Outermost layer: request id (echoed in `X-Request-ID`), access log, metrics, and the
    500 envelope for anything unhandled (logged with its traceback, never sent)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, *, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        began = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled_error", method=scope["method"], path=scope["path"])
            status = 500
            if not started:
                body = envelope(
                    status=500,
                    message="Internal server error",
                    path=scope["path"],
                    code="INTERNAL_ERROR",
                    request_id=request_id,
                )
                await _json_response(500, body)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - began
            template = _route_template(scope)
            self.metrics.observe(scope["method"], template, status, elapsed)
            if self.access_log:
                access_logger().info(
                    "request",
                    request_id=request_id,
                    method=scope["method"],
                    path=scope["path"],
                    route=template,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")


_CACHED_ROUTE = "tienda.cached_route"


@dataclass(frozen=True)
class CachedRead:
    """A public GET route whose answer a module keeps in the cache, whole (e.g. a product's
    public JSON). Such a request is answered from the cache before routing when the caller
    sends no credentials and the entry is there and `servable`; anything else — a miss, a
    hidden product's tombstone, a signed-in caller, a query string — goes to the route, whose
    answer it is. The route and the module's writers keep the entry right."""

    path: str
    """The route's path under the API prefixes, with one parameter: `/products/{productId}`."""
    parameter: str
    """A regular expression the parameter must match (others go to the route)."""
    key: Callable[[str], str]
    servable: Callable[[bytes], bool]
    media_type: bytes = b"application/json"


@dataclass(frozen=True)
class CachedQuery:
    """A public GET route whose answer depends only on its query string and on a version of
    the data it reads (a listing page, a search), kept in the cache by its module per
    version. The route stores each answer it gives under `key(platform, raw query string)` as
    well (`RenderCache.get(..., alias=...)`); a request whose raw query string has an answer
    there, under the data's current version, is answered from it before routing. Only
    answers are stored, never errors: a bad query still reaches the route and its 400."""

    path: str
    """The route's path under the API prefixes, without parameters: `/products`."""
    key: Callable[[Any, bytes], Awaitable[str]]
    """(the platform, the raw query string) -> the key its answer is kept under now."""
    media_type: bytes = b"application/json"


MAX_CACHED_QUERY_BYTES = 2048
"""Longer query strings always go to the route."""


class CachedReadMiddleware:
    """Answers `CachedRead` and `CachedQuery` routes from the cache without the framework's
    routing, validation and dependency resolution (most of a cached read's cost). Inside
    RequestContextMiddleware, so request ids, access logs and metrics are the same as for a
    routed request. Callers with credentials always go to the route."""

    def __init__(
        self,
        app: ASGIApp,
        reads: tuple[CachedRead, ...],
        prefixes: tuple[str, ...],
        queries: tuple[CachedQuery, ...] = (),
    ) -> None:
        self.app = app
        self.reads: list[tuple[re.Pattern[str], CachedRead, str]] = []
        for read in reads:
            head, _, tail = read.path.partition("{")
            name, _, rest = tail.partition("}")
            for prefix in prefixes:
                pattern = re.compile(f"^{re.escape(prefix + head)}({read.parameter}){re.escape(rest)}$")
                self.reads.append((pattern, read, f"{prefix}{head}{{{name}}}{rest}"))
        self.queries = {prefix + query.path: query for query in queries for prefix in prefixes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not any(name == b"authorization" for name, _ in scope["headers"])
        ):
            served = await (self._query(scope, send) if scope.get("query_string") else self._read(scope, send))
            if served:
                return
        await self.app(scope, receive, send)

    async def _read(self, scope: Scope, send: Send) -> bool:
        for pattern, read, template in self.reads:
            found = pattern.match(scope["path"])
            if found is None:
                continue
            body = await scope["app"].state.platform.cache.get(read.key(found.group(1)))
            if body is None or not read.servable(body):
                return False
            await _send_cached(scope, send, template, read.media_type, body)
            return True
        return False

    async def _query(self, scope: Scope, send: Send) -> bool:
        query = self.queries.get(scope["path"])
        raw: bytes = scope["query_string"]
        if query is None or len(raw) > MAX_CACHED_QUERY_BYTES:
            return False
        platform = scope["app"].state.platform
        body = await platform.cache.get(await query.key(platform, raw))
        if body is None:
            return False
        await _send_cached(scope, send, scope["path"], query.media_type, body)
        return True


async def _send_cached(scope: Scope, send: Send, template: str, media_type: bytes, body: bytes) -> None:
    scope[_CACHED_ROUTE] = template
    headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_BODY_LIMIT = "tienda.body_limit"


class _BodyLimit:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes


def _too_large(max_bytes: int) -> StarletteHTTPException:
    # An HTTPException, because the framework turns anything else raised while reading the
    # body into a 400.
    return StarletteHTTPException(413, f"Request body exceeds {max_bytes} bytes")


class BodyLimitMiddleware:
    """Refuses bodies over the limit with 413 without reading more than the limit of them.

    A declared `Content-Length` is checked when the body is first read rather than when the
    request arrives: a route that reads its own body (an upload) may first allow its request
    a larger one with `allow_body_size`. Routes with a declared body read it before anything
    else runs, so for them nothing changes; a route that never reads its body never minds it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = scope[_BODY_LIMIT] = _BodyLimit(self.max_bytes)
        declared = 0
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit():
                declared = int(value)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            if declared > limit.max_bytes:
                raise _too_large(limit.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    raise _too_large(limit.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


def allow_body_size(request: Request, max_bytes: int) -> None:
    """Lets this request's body be up to `max_bytes` (never less than the app's limit). Call it
    before reading the body, and only once the caller is known to be allowed to send one."""
    limit = request.scope.get(_BODY_LIMIT)
    if isinstance(limit, _BodyLimit):
        limit.max_bytes = max(limit.max_bytes, max_bytes)


def _rid(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    body = envelope(
        status=exc.status,
        message=exc.message,
        path=request.url.path,
        code=exc.code,
        request_id=_rid(request),
        details=exc.details,
    )
    return _json_response(exc.status, body, exc.headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(err.get("type") == "json_invalid" for err in errors):
        body = envelope(
            status=400,
            message="Malformed JSON body",
            path=request.url.path,
            code="MALFORMED_JSON",
            request_id=_rid(request),
            details=[ErrorDetail(field="body", message=str(err.get("msg")), type="json_invalid") for err in errors],
        )
        return _json_response(400, body)
    details = [
        ErrorDetail(field=_field(err.get("loc", ())), message=str(err.get("msg")), type=str(err.get("type")))
        for err in errors
    ]
    body = envelope(
        status=400,
        message="Validation failed",
        path=request.url.path,
        code="VALIDATION_FAILED",
        request_id=_rid(request),
        details=details,
    )
    return _json_response(400, body)


_HTTP_CODES = {
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"No route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    body = envelope(
        status=exc.status_code,
        message=message,
        path=request.url.path,
        code=_HTTP_CODES.get(exc.status_code, "HTTP_ERROR"),
        request_id=_rid(request),
    )
    return _json_response(exc.status_code, body, dict(exc.headers or {}))


def install(
    app: FastAPI,
    *,
    metrics: HttpMetrics,
    max_body_bytes: int,
    access_log: bool = True,
    cached_reads: tuple[CachedRead, ...] = (),
    cached_queries: tuple[CachedQuery, ...] = (),
    prefixes: tuple[str, ...] = (),
) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    if cached_reads or cached_queries:
        app.add_middleware(CachedReadMiddleware, reads=cached_reads, prefixes=prefixes, queries=cached_queries)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, access_log=access_log)


Check = Callable[[], Awaitable[None]]


def internal_router(module: str) -> APIRouter:
    """The routes other services call `module` on (its client protocol over HTTP):
    `/internal/<module>/...`, mounted at the root with no `/api` alias (a module lists it in its
    `root_routers`), left out of the public API document, answering SERVICE tokens only. The
    gateway never routes to them."""
    return APIRouter(prefix=f"/internal/{module}", include_in_schema=False, dependencies=[Depends(internal_principal)])


def include_flat(target: APIRouter, router: APIRouter, *, prefix: str = "", include_in_schema: bool = True) -> None:
    """Add the router's routes to `target` itself (the app's own router, or one whose routes
    the app takes as they are), under `prefix`, as FastAPI's `include_router` did before 0.137.
    Since then it keeps each included router as a node that every request walks through,
    matching each of its routes twice, with bookkeeping in the scope per route: with the
    shop's ~140 routes that cost a request 100-250 us before its handler ran (more
    than a cached read's whole answer). Routes added flat are matched once each, by their regex.
    The OpenAPI document is the same (tests/platform/test_openapi.py checks it)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"only API routes can be included flat, not {route!r}")
        target.add_api_route(
            prefix + route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            dependencies=route.dependencies,
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=route.responses,
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema and include_in_schema,
            response_class=route.response_class,
            name=route.name,
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
        )


INDEX_DEPTH = 3
"""Path segments the route index keys on (`/api/v1/carts`)."""
_INDEXED_ROUTE = "tienda.indexed_route"
"""The scope key under which `IndexedRoutes.matches` names the route that matched."""


class IndexedRoutes(BaseRoute):
    """All the app's routes as one, behind an index by their leading static path segments.

    The router tries its routes in order, one regular expression each, until one matches:
    ~1 us per route, so a route near the end of the shop's ~140 (`/healthz`) cost a request
    150 us of matching. Here a request tries only the routes whose static beginning (the
    literal segments before the first parameter, at most INDEX_DEPTH) is a beginning of its
    path, in the same order. No other route can match that path (their literal beginning
    differs), so the answer — a match, a 405, a 404 — is the one trying them all would give."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = list(routes)
        prefixes = [_static_prefix(getattr(route, "path", "")) for route in self.routes]
        keys = {prefix[:n] for prefix in prefixes for n in range(len(prefix) + 1)} | {()}
        self._candidates: dict[tuple[str, ...], list[BaseRoute]] = {
            key: [route for route, prefix in zip(self.routes, prefixes, strict=True) if key[: len(prefix)] == prefix]
            for key in keys
        }

    def _first(self, scope: Scope, routes: Sequence[BaseRoute]) -> tuple[Match, Scope]:
        """As the router decides: the first full match, else the first partial one."""
        partial: Scope | None = None
        for route in routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return match, {**child, _INDEXED_ROUTE: route}
            if match is Match.PARTIAL and partial is None:
                partial = {**child, _INDEXED_ROUTE: route}
        return (Match.PARTIAL, partial) if partial is not None else (Match.NONE, {})

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        key = tuple(get_route_path(scope).split("/", INDEX_DEPTH + 1)[1 : INDEX_DEPTH + 1])
        while key not in self._candidates:
            key = key[:-1]
        return self._first(scope, self._candidates[key])

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The router copied the child scope of `matches`, which names the route, into the scope.
        await scope[_INDEXED_ROUTE].handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)


def _static_prefix(template: str) -> tuple[str, ...]:
    """The leading segments of a path template before its first parameter, at most INDEX_DEPTH."""
    prefix: list[str] = []
    for segment in template.split("/")[1 : INDEX_DEPTH + 1]:
        if "{" in segment:
            break
        prefix.append(segment)
    return tuple(prefix)


def index_routes(app: FastAPI) -> list[BaseRoute]:
    """Put the app's routes behind one `IndexedRoutes`; returns them as they were (the OpenAPI
    document is made from those)."""
    routes = list(app.router.routes)
    app.router.routes = [IndexedRoutes(routes)]
    return routes


def ops_router(
    checks: Callable[[], dict[str, Check]], metrics: HttpMetrics, *, multiprocess: bool = False
) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: every configured database, the cache/rate-limit store and the broker answer",
        responses={503: {"description": "A dependency is unreachable; `details` names it."}},
    )
    async def readyz(request: Request) -> Response:
        results: dict[str, str] = {}
        for name, check in checks().items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"unreachable: {type(exc).__name__}"
        if all(v == "ok" for v in results.values()):
            return _json_response(200, {"status": "ok", "checks": results})
        body = envelope(
            status=503,
            message="Not ready",
            path=request.url.path,
            code="NOT_READY",
            request_id=_rid(request),
            details=[ErrorDetail(field=k, message=v) for k, v in results.items() if v != "ok"],
        )
        return _json_response(503, body)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        registry = metrics.registry
        if multiprocess:  # every worker writes its samples to files; add them up
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def absolute_url(request: Request, url: str | None, *, base: str | None = None) -> str | None:
    """A URL of ours kept as a path (`/api/v1/...`) made absolute: under `base` (the shop's
    public URL) when set, else under the address the request reached us at."""
    if url is None or not url.startswith("/"):
        return url
    return (base or str(request.base_url)).rstrip("/") + url
