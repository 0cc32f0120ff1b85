"""The container's health check (no curl in a slim image): `python /app/healthcheck.py [MODE]`.

    http     GET http://127.0.0.1:$PORT/healthz answers 200 (an API container)
    worker   the module's database, the broker and Redis accept connections (a worker has no
             HTTP port; what it needs is that it can reach them)
    auto     (default) by what the container runs: `worker` for a worker, nothing to check for
             a one-off command such as `migrate`, else `http`

Exit status 0 is healthy, 1 unhealthy. Only the standard library: it runs in any Python.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from urllib.parse import urlsplit

DEFAULT_PORTS = {
    "postgresql": 5432,
    "postgres": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "amqp": 5672,
    "amqps": 5671,
    "redis": 6379,
    "rediss": 6379,
}
TIMEOUT = 3.0


def check_http() -> str | None:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return None if response.status == 200 else f"{url} answered {response.status}"
    except OSError as exc:
        return f"{url}: {exc}"


def _dependencies() -> dict[str, str]:
    """The URLs a worker of TIENDA_SERVICE needs, by name."""
    urls: dict[str, str] = {}
    modules = [m for m in os.environ.get("TIENDA_SERVICE", "").split(",") if m]
    for module in modules:
        url = os.environ.get(f"TIENDA_{module.upper()}_DATABASE_URL") or os.environ.get("TIENDA_DATABASE_URL")
        if url:
            urls[f"database:{module}"] = url
    if not modules and os.environ.get("TIENDA_DATABASE_URL"):
        urls["database"] = os.environ["TIENDA_DATABASE_URL"]
    for name in ("broker", "redis"):
        url = os.environ.get(f"TIENDA_{name.upper()}_URL")
        if url:
            urls[name] = url
    return urls


def check_reachable(name: str, url: str) -> str | None:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite" or not parts.hostname:
        return None
    port = parts.port or DEFAULT_PORTS.get(scheme)
    if port is None:
        return f"{name}: no port known for {scheme}://"
    try:
        with socket.create_connection((parts.hostname, port), timeout=TIMEOUT):
            return None
    except OSError as exc:
        return f"{name} at {parts.hostname}:{port}: {exc}"


def check_worker() -> str | None:
    problems = [p for name, url in _dependencies().items() if (p := check_reachable(name, url))]
    return "; ".join(problems) or None


def running() -> list[str]:
    try:
        with open("/proc/1/cmdline", "rb") as cmdline:
            return [arg.decode(errors="replace") for arg in cmdline.read().split(b"\0") if arg]
    except OSError:
        return []


def main(argv: list[str]) -> int:
    mode = argv[1] if len(argv) > 1 else "auto"
    if mode == "auto":
        args = running()
        if "worker" in args:
            mode = "worker"
        elif "serve" in args or not args:
            mode = "http"
        else:
            return 0  # a one-off command: nothing listens, nothing to check
    checks = {"http": check_http, "worker": check_worker}
    if mode not in checks:
        print(f"healthcheck: unknown mode {mode!r}; use http, worker or auto", file=sys.stderr)
        return 2
    problem = checks[mode]()
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
