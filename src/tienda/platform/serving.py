"""Running an ASGI app in several uvicorn worker processes, each on a listening socket of its own.

uvicorn's supervisor binds one socket and every worker accepts from it. Linux wakes the processes
waiting on one socket last in, first out, so when connections arrive together (a proxy's pool
opening, a load test starting) one worker can take most or all of them, and keeps them for as long
as they are kept alive: on two cores, 32 keep-alive connections went 32/0, 25/7, 13/19 or 16/16
from one run to the next, and cart writes went with them: 1,500 a second with a p99 of 35 ms at
32/0 (one core idle), 2,300 and 22 ms at 13/19 (`bench/README.md`). With SO_REUSEPORT each worker
listens on a socket of its own and the kernel spreads new connections over them by a hash of their
addresses.

uvicorn's supervisor itself is kept (worker health checks, restarts, signals): it hands its
sockets to each worker it spawns, or respawns, by pickling them, and a `ReusePortSocket`
unpickles as a new socket of the port's SO_REUSEPORT group. The one in the supervisor is bound
and never listens, so it takes no connections: it holds the port, and a port already taken
fails there, before any worker starts. A worker that dies takes its socket with it; the others
take new connections until its replacement binds again.

Each response leaves in one write (`CoalescingHttpToolsProtocol`): uvicorn writes a response's
status line and headers when the app starts it and the body when the app sends it, two sends and
two packets, and the client wakes for each; now what a connection writes in one turn of the event
loop is sent together.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

BALANCED = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")
"""Whether the kernel spreads connections over the sockets of a SO_REUSEPORT group (Linux; the
BSDs and macOS accept the option but give every connection to one socket)."""


class CoalescedWrites:
    """A connection's transport whose writes in one turn of the event loop go out as one.

    The first write of a turn schedules the send for the end of the turn; the writes after it
    in the same turn join it. What would make the waiting data larger than `LARGE` is not held:
    what waits goes first, then it, as written. `close` and `write_eof` send what waits first;
    every other attribute is the transport's own (flow control works on its buffer, as before)."""

    LARGE = 64 * 1024

    __slots__ = ("_loop", "_size", "_transport", "_waiting")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._waiting: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._size + len(data) > self.LARGE:
            self.flush()
            self._transport.write(data)
            return
        if not self._waiting:
            self._loop.call_soon(self.flush)
        self._waiting.append(bytes(data))
        self._size += len(data)

    def flush(self) -> None:
        if not self._waiting:
            return
        data = self._waiting[0] if len(self._waiting) == 1 else b"".join(self._waiting)
        self._waiting = []
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._waiting = []
        self._size = 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through `CoalescedWrites`: a response's head and a
    body sent in the same turn leave in one packet (as aiohttp's server sends small responses
    since 3.12). On two cores, uvicorn's hello-world went from 45,000 to 58,000 responses a
    second at 32 connections, the shop's `/healthz` from 12,300 to 16,000 (`bench/README.md`)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        coalesced = CoalescedWrites(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(cast(asyncio.Transport, coalesced))


SERVER_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": CoalescingHttpToolsProtocol,
    "log_level": "warning",
    "access_log": False,
}
"""uvicorn as `tienda serve` runs the shop (the bench's hello ceiling runs the same way): uvloop,
httptools with a response in one write, and no uvicorn access log (the shop writes its own,
`platform.web`)."""


class ReusePortSocket(socket.socket):
    """A bound, not listening, SO_REUSEPORT socket that pickles as a new socket on its address."""

    def __reduce__(self) -> tuple[Any, ...]:
        host, port = self.getsockname()[:2]
        return bind_reuse_port, (host, port)


def bind_reuse_port(host: str, port: int) -> ReusePortSocket:
    """A socket bound to (host, port) in the port's SO_REUSEPORT group; uvicorn starts listening on it."""
    sock = ReusePortSocket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def run(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """`uvicorn.run(app, host=..., port=..., workers=..., **options)`, with one listening socket
    per worker where the kernel balances them (`BALANCED`) and more than one worker runs."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if workers < 2 or not BALANCED:
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    try:
        held = bind_reuse_port(host, port)
    except OSError as exc:
        raise SystemExit(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        Multiprocess(config, sockets=[held]).run()
    finally:
        held.close()
