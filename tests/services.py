"""Modules run as separate services for the tests of their HTTP clients: each callee is the
real app of its module alone (`create_app(settings, modules=[M])`), served by uvicorn on a
loopback port in a thread with its own event loop and its own database, as
`tienda serve --service M` would serve it. The caller is a platform that runs none of them,
so each module's client there is its HTTP client.

`FaultyNetwork` stands between a caller and a service for the tests of retries, timeouts and
the circuit breaker: a small forwarding proxy that can answer 503 itself or hold a request, as
a load balancer in front of a dead or stuck service would. It plays the network, not our code:
what it lets through reaches the real service unchanged.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from pydantic import SecretStr
from starlette.responses import JSONResponse, Response

from tests.conftest import shop_settings
from tienda.app import create_app
from tienda.platform.auth import Role
from tienda.platform.clock import FrozenClock, SystemClock
from tienda.platform.modules import ModuleSpec
from tienda.platform.runtime import Platform
from tienda.settings import Settings

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256"
"""The key every service of a test deployment shares (the one of tests/conftest.py)."""


class Served:
    """An ASGI app served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any, name: str) -> None:
        # Port 0: the server binds a free port itself, read back once it listens (a port found
        # free beforehand can be taken in between, by any outgoing connection of a busy machine).
        config = uvicorn.Config(app, host="127.0.0.1", port=0, loop="asyncio", log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"serve-{name}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError(f"{name} did not start")
            time.sleep(0.02)
        self.port = int(self.server.servers[0].sockets[0].getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def service_settings(data_dir: Path, module: str, **extra: Any) -> Settings:
    """A service's settings: its own SQLite database in its own data dir, the shared key."""
    data_dir.mkdir(parents=True, exist_ok=True)
    other_key = extra.pop("jwt_secret", None)
    settings = shop_settings(data_dir, f"sqlite+aiosqlite:///{data_dir / f'{module}.db'}", **extra)
    return settings.model_copy(update={"jwt_secret": SecretStr(other_key)}) if other_key else settings


class Service(Served):
    """A service of the split deployment: `modules` alone, on their own database."""

    def __init__(self, modules: Sequence[ModuleSpec], settings: Settings) -> None:
        self.modules = tuple(modules)
        self.settings = settings
        super().__init__(create_app(settings, modules=list(modules), migrate=True), "+".join(m.name for m in modules))

    def local(self) -> Platform:
        """The service's modules in this process, on its database: what its in-process
        clients answer, to hold the HTTP clients' answers against."""
        return Platform.build(self.settings, self.modules, clock=SystemClock())


def serve(modules: Sequence[ModuleSpec], data_dir: Path, **extra: Any) -> Service:
    """The modules' own app, as `tienda serve --service ...` runs it, migrating its database."""
    return Service(modules, service_settings(data_dir, "+".join(m.name for m in modules), **extra))


def caller(data_dir: Path, clock: FrozenClock | None = None, **urls_and_settings: Any) -> Platform:
    """A process that runs none of the callee modules: its clients call their services.
    Retries wait little, so tests of them are quick."""
    extra: dict[str, Any] = {"service_retry_backoff_seconds": 0.01, **urls_and_settings}
    settings = service_settings(data_dir, "caller", **extra)
    return Platform.build(settings, (), clock=clock or FrozenClock())


def bearer(platform: Platform, subject: str, role: Role) -> dict[str, str]:
    """An Authorization header signed with the shared key, e.g. an admin's, to set up data
    through a service's public API."""
    return {"Authorization": f"Bearer {platform.tokens.issue(subject, role).token}"}


_HOP_HEADERS = {"content-length", "transfer-encoding", "content-encoding", "connection"}


@dataclass
class FaultyNetwork:
    """A forwarding proxy to `target`. `plan` holds what the next requests get, one entry per
    request: "503" (answered here, never forwarded), "hang" (held `hang_seconds`, then
    forwarded), or "pass". With the plan empty every request passes. `seen` lists the
    (method, path, headers) of every request that arrived."""

    target: str
    hang_seconds: float = 5.0
    plan: deque[str] = field(default_factory=deque)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    always: str = "pass"
    forwarded: int = 0
    """Requests the service has answered (held ones included, once they went on)."""

    def __post_init__(self) -> None:
        app = FastAPI()
        upstream = httpx.AsyncClient(base_url=self.target, timeout=30)

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
        async def forward(path: str, request: Request) -> Response:
            self.seen.append((request.method, request.url.path, dict(request.headers)))
            body = await request.body()  # before holding it: the caller may be gone by then
            action = self.plan.popleft() if self.plan else self.always
            if action == "503":
                return JSONResponse({"message": "no healthy upstream"}, status_code=503)
            if action == "hang":
                await asyncio.sleep(self.hang_seconds)
            answer = await upstream.request(
                request.method,
                request.url.path,
                params=request.query_params,
                content=body,
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            )
            self.forwarded += 1
            headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS}
            return Response(answer.content, status_code=answer.status_code, headers=headers)

        self.served = Served(app, f"proxy-to-{self.target}")
        self.url = self.served.url

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.seen]

    def stop(self) -> None:
        self.served.stop()
