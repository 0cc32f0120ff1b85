"""The gateway (deploy/nginx) routes every route of every module to that module's service.

The routes come from the real app's routers. Two ways of checking nginx: a reading of its
`location` blocks with nginx's own rules of precedence (always), and the real nginx in
front of one stub service per module (when nginx is installed; on CI it must be).
"""

from __future__ import annotations

import gzip
import http.client
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.deploy.gateway import (
    NGINX_DIR,
    check_config,
    free_port,
    render,
    running_gateway,
    stub_services,
)
from tests.deploy.routing import (
    INTERNAL_SAMPLES,
    SERVICES,
    gateway_table,
    internal_routes_of_the_app,
    owner,
    routes_of_the_app,
)

ENVELOPE_KEYS = {"timestamp", "status", "error", "message", "path", "code", "requestId"}


# -- the table against the app ---------------------------------------------------------------


def test_the_app_has_routes_for_every_service() -> None:
    assert {route.module for route in routes_of_the_app()} == set(SERVICES)


def test_the_table_sends_every_route_of_the_app_to_its_module() -> None:
    wrong = [
        (route.template, route.module, owner(route.sample))
        for route in routes_of_the_app()
        if owner(route.sample) != route.module
    ]
    assert wrong == []


def test_every_prefix_of_the_table_is_used_by_some_route() -> None:
    samples = [route.sample for route in routes_of_the_app()]
    table = gateway_table()
    unused = [
        prefix
        for prefix in table
        if not any(owner(sample, {prefix: table[prefix]}) == table[prefix] for sample in samples)
    ]
    assert unused == []


def test_the_table_does_not_lead_to_internal_routes() -> None:
    assert [path for path in INTERNAL_SAMPLES if owner(path) is not None] == []


# -- nginx's configuration, read ------------------------------------------------------------


@dataclass
class Block:
    name: str
    args: list[str]
    children: list[Block] = field(default_factory=list)


def parse_nginx(text: str) -> list[Block]:
    """A small reader of nginx's syntax: directives, quoted strings, comments, nested blocks."""
    tokens: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char == "#":
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        elif char in "{};":
            tokens.append(char)
            i += 1
        elif char in "'\"":
            end = text.index(char, i + 1)
            tokens.append(text[i + 1 : end])
            i = end + 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in "{};":
                i = text.index("}", i) + 1 if text.startswith("${", i) else i + 1
            tokens.append(text[start:i])

    def block(position: int) -> tuple[list[Block], int]:
        blocks: list[Block] = []
        words: list[str] = []
        while position < len(tokens):
            token = tokens[position]
            position += 1
            if token == ";":
                blocks.append(Block(words[0], words[1:]))
                words = []
            elif token == "{":
                children, position = block(position)
                blocks.append(Block(words[0], words[1:], children))
                words = []
            elif token == "}":
                return blocks, position
            else:
                words.append(token)
        return blocks, position

    return block(0)[0]


def _server() -> Block:
    blocks = parse_nginx((NGINX_DIR / "tienda.conf").read_text())
    [server] = [b for b in blocks if b.name == "server"]
    return server


def _target(location: Block) -> str:
    """`service` for a location that proxies to tienda_<service>, else `return <code>`."""
    for directive in location.children:
        if directive.name == "proxy_pass":
            found = re.fullmatch(r"http://tienda_(\w+)", directive.args[0])
            assert found, f"unexpected proxy_pass {directive.args}"
            return found.group(1)
        if directive.name == "return":
            return f"return {directive.args[0]}"
    raise AssertionError(f"location {location.args} neither proxies nor returns")


def nginx_routes(path: str) -> str:
    """Which location nginx chooses for `path`, by its rules: an exact match; else the longest
    prefix if it has `^~`; else the first regular expression that matches, in order; else the
    longest prefix."""
    locations = [b for b in _server().children if b.name == "location" and not b.args[0].startswith("@")]
    prefixes: list[tuple[str, Block, bool]] = []
    for location in locations:
        if location.args[0] == "=" and location.args[1] == path:
            return _target(location)
        if len(location.args) == 1 or location.args[0] == "^~":
            prefixes.append((location.args[-1], location, location.args[0] == "^~"))
    longest = max((p for p in prefixes if path.startswith(p[0])), key=lambda p: len(p[0]), default=None)
    if longest is not None and longest[2]:
        return _target(longest[1])
    for location in locations:
        if location.args[0] in ("~", "~*"):
            flags = re.IGNORECASE if location.args[0] == "~*" else 0
            if re.search(location.args[1], path, flags):
                return _target(location)
    assert longest is not None, f"no location for {path}"
    return _target(longest[1])


def test_nginx_locations_send_every_route_to_its_module() -> None:
    wrong = [
        (route.template, route.module, nginx_routes(route.sample))
        for route in routes_of_the_app()
        if nginx_routes(route.sample) != route.module
    ]
    assert wrong == []


def test_nginx_locations_send_every_prefix_of_the_table_to_its_service() -> None:
    table = gateway_table()
    probes = {f"{prefix}{tail}": service for prefix, service in table.items() for tail in ("", "/", "/x-1", "/x-1/y")}
    # /media itself is no route of catalog's; only what is under it.
    probes = {path: service for path, service in probes.items() if owner(path) == service and path != "/media"}
    assert {path: nginx_routes(path) for path in probes} == probes


def test_nginx_locations_deny_internal_and_unknown_paths() -> None:
    unknown = ("/", "/api", "/api/v1", "/api/v2/users", "/docs", "/openapi.json", "/metrics", "/readyz", "/usersx")
    assert {path: nginx_routes(path) for path in INTERNAL_SAMPLES + unknown} == dict.fromkeys(
        INTERNAL_SAMPLES + unknown, "return 404"
    )


def test_every_service_has_exactly_one_upstream_and_every_proxy_pass_names_one() -> None:
    template = (NGINX_DIR / "templates" / "upstreams.conf.template").read_text()
    upstreams = [b for b in parse_nginx(template) if b.name == "upstream"]
    assert sorted(b.args[0] for b in upstreams) == sorted(f"tienda_{service}" for service in SERVICES)
    for upstream in upstreams:
        [server] = [d for d in upstream.children if d.name == "server"]
        service = upstream.args[0].removeprefix("tienda_")
        assert server.args[0] == f"${{TIENDA_{service.upper()}_UPSTREAM}}"
    proxied = {_target(b) for b in _server().children if b.name == "location" and not _target(b).startswith("return")}
    assert proxied == set(SERVICES)


# -- the real nginx ---------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> dict[str, object]:
        data = gzip.decompress(self.body) if self.headers.get("Content-Encoding") == "gzip" else self.body
        loaded = json.loads(data)
        assert isinstance(loaded, dict)
        return loaded


_addresses = itertools.count()


def fresh_ip() -> str:
    """A loopback address of its own, so requests of one test do not share a rate limit."""
    n = next(_addresses)
    return f"127.42.{n // 250}.{n % 250 + 1}"


def call(
    base: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    source: str | None = None,
) -> Answer:
    """One request, the path sent exactly as given (no normalisation), from `source`."""
    url = urlsplit(base)
    assert url.hostname
    assert url.port
    connection = http.client.HTTPConnection(
        url.hostname, url.port, timeout=15, source_address=(source or fresh_ip(), 0)
    )
    try:
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b"{}"
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def assert_envelope(answer: Answer, *, status: int, code: str, path: str | None = None) -> dict[str, object]:
    assert answer.status == status, answer.body
    assert answer.headers.get_content_type() == "application/json"
    body = answer.json()
    assert set(body) == ENVELOPE_KEYS, body
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["timestamp"], str)
    datetime.fromisoformat(body["timestamp"])
    assert body["requestId"] == answer.headers.get("X-Request-ID")
    if path is not None:
        assert body["path"] == path
    return body


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with stub_services() as upstreams, running_gateway(upstreams, workdir=tmp_path_factory.mktemp("gateway")) as url:
        yield url


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    conf = render(tmp_path / "conf", {s: f"127.0.0.1:{9000 + i}" for i, s in enumerate(SERVICES)}, listen="8080")
    checked = check_config(conf, tmp_path / "prefix")
    assert checked.returncode == 0, checked.stderr
    assert "[warn]" not in checked.stderr
    assert "[emerg]" not in checked.stderr


def test_every_route_of_the_app_reaches_its_service_through_nginx(gateway: str) -> None:
    wrong = []
    for route in routes_of_the_app():
        answer = call(gateway, route.method, route.sample)
        seen = answer.json() if answer.status == 200 else {"status": answer.status}
        if seen.get("service") != route.module or seen.get("path") != route.sample:
            wrong.append((route.method, route.sample, route.module, seen))
    assert wrong == []


def test_query_strings_and_bodies_pass_through_unchanged(gateway: str) -> None:
    answer = call(gateway, "POST", "/api/products/search?q=red%20shoes&page=2", body=b'{"a": 1}')
    assert answer.json() == {
        "service": "search",
        "method": "POST",
        "path": "/api/products/search?q=red%20shoes&page=2",
        "requestId": answer.json()["requestId"],
        "forwardedFor": answer.json()["forwardedFor"],
        "bodyBytes": 8,
    }


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_internal_routes_are_not_reachable(gateway: str, method: str) -> None:
    for path in INTERNAL_SAMPLES:
        assert_envelope(call(gateway, method, path), status=404, code="NOT_FOUND", path=path)


def test_the_apps_own_internal_routes_are_not_reachable(gateway: str) -> None:
    for route in internal_routes_of_the_app():
        assert nginx_routes(route.sample) == "return 404", route.template
        assert_envelope(call(gateway, route.method, route.sample), status=404, code="NOT_FOUND", path=route.sample)


def test_unknown_paths_and_the_services_own_operations_answer_404(gateway: str) -> None:
    for path in ("/", "/api/v1", "/api/v2/users", "/readyz", "/metrics", "/docs", "/usersx"):
        assert_envelope(call(gateway, "GET", path), status=404, code="NOT_FOUND", path=path)


def test_the_gateway_answers_its_own_liveness(gateway: str) -> None:
    answer = call(gateway, "GET", "/healthz")
    assert (answer.status, answer.json()) == (200, {"status": "ok"})


def test_paths_that_could_mean_something_else_upstream_are_refused(gateway: str) -> None:
    for path in (
        "/internal/x/../../api/v1/users/me",
        "/api/v1/users/./me",
        "/api/v1/users/%2e%2e/%2E%2E/internal/orders",
        "/api/v1/products/a%2Fb",
        "/api/v1/products/a%5c..%5cb",
    ):
        assert_envelope(call(gateway, "GET", path), status=400, code="BAD_REQUEST")
    # Encoded characters in the query string are fine.
    assert call(gateway, "GET", "/api/v1/products/search?q=a%2Fb%2e").json()["service"] == "search"


def test_the_clients_request_id_is_passed_on_else_one_is_made(gateway: str) -> None:
    assert call(gateway, "GET", "/api/v1/carts", headers={"X-Request-ID": "trace-42.a:b"}).json()["requestId"] == (
        "trace-42.a:b"
    )
    for headers in ({}, {"X-Request-ID": "not one"}, {"X-Request-ID": "x" * 65}, {"X-Request-ID": '"}'}):
        made = call(gateway, "GET", "/api/v1/carts", headers=headers).json()["requestId"]
        assert isinstance(made, str)
        assert re.fullmatch(r"[0-9a-f]{32}", made), made
    # The gateway's own answers carry it too, in the envelope and the header.
    answer = call(gateway, "GET", "/internal/x", headers={"X-Request-ID": "trace-43"})
    assert assert_envelope(answer, status=404, code="NOT_FOUND")["requestId"] == "trace-43"


def test_the_client_cannot_choose_its_forwarded_address(gateway: str) -> None:
    source = fresh_ip()
    answer = call(gateway, "GET", "/api/v1/orders", headers={"X-Forwarded-For": "6.6.6.6"}, source=source)
    assert answer.json()["forwardedFor"] == source


def test_each_client_ip_is_rate_limited_with_the_envelope(gateway: str) -> None:
    source = fresh_ip()
    answers = [call(gateway, "GET", "/api/v1/products", source=source) for _ in range(90)]
    statuses = [a.status for a in answers]
    assert set(statuses) == {200, 429}
    assert statuses.count(200) >= 41  # the burst of 40, and the request that started it
    assert statuses[:41] == [200] * 41
    limited = next(a for a in answers if a.status == 429)
    assert_envelope(limited, status=429, code="RATE_LIMITED", path="/api/v1/products")
    assert limited.headers.get("Retry-After") == "1"
    # Another client is not affected.
    assert call(gateway, "GET", "/api/v1/products").status == 200


def test_the_credential_endpoints_have_a_stricter_limit(gateway: str) -> None:
    source = fresh_ip()
    statuses = [call(gateway, "POST", "/api/users/login", source=source).status for _ in range(16)]
    assert statuses[:11] == [200] * 11
    assert 429 in statuses
    # The same client may still use the rest of the API.
    assert call(gateway, "GET", "/api/v1/users/me", source=source).status == 200


def test_bodies_over_a_mebibyte_are_refused_except_image_uploads(gateway: str) -> None:
    image = b"\0" * (5 * 1024 * 1024 + 64 * 1024)
    uploaded = call(gateway, "POST", "/api/v1/products/p_1/images", body=image, headers={"Content-Type": "image/png"})
    assert (uploaded.json()["service"], uploaded.json()["bodyBytes"]) == ("catalog", len(image))
    too_big = call(gateway, "POST", "/api/v1/orders", body=b"{" + b" " * (1024 * 1024) + b"}")
    assert_envelope(too_big, status=413, code="PAYLOAD_TOO_LARGE", path="/api/v1/orders")
    assert_envelope(
        call(gateway, "POST", "/api/products/p_1/images", body=b"\0" * (7 * 1024 * 1024)),
        status=413,
        code="PAYLOAD_TOO_LARGE",
    )


def test_json_is_compressed_for_clients_that_accept_it(gateway: str) -> None:
    compressed = call(gateway, "GET", "/api/v1/categories?pad=1", headers={"Accept-Encoding": "gzip"})
    assert compressed.headers.get("Content-Encoding") == "gzip"
    assert compressed.json()["service"] == "catalog"
    plain = call(gateway, "GET", "/api/v1/categories?pad=1")
    assert plain.headers.get("Content-Encoding") is None
    assert len(plain.body) > len(compressed.body)


def test_a_service_that_is_down_answers_503_in_the_envelope(tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"
    with running_gateway(dict.fromkeys(SERVICES, closed), workdir=tmp_path) as gateway:
        assert_envelope(call(gateway, "GET", "/api/v1/payments/pay_1"), status=503, code="SERVICE_UNAVAILABLE")
