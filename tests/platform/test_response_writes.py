"""A response leaves `tienda serve` in one write (`serving.CoalescingHttpToolsProtocol`).

The protocol is uvicorn's own, driven with real requests; what it writes is read at the
transport, the boundary to the operating system: a transport that records each write, and
a real socket for the round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from tienda.platform import serving

Message = dict[str, Any]
App = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

BODY = b'{"hello":"world"}'
LARGE_BODY = b"x" * (serving.CoalescedWrites.LARGE + 1)


def _app(body: bytes, *, chunks: int = 1, close: bool = False) -> App:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body) * chunks).encode())]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for n in range(chunks):
            await send({"type": "http.response.body", "body": body, "more_body": n < chunks - 1})
            await asyncio.sleep(0)  # the next chunk in a later turn of the loop

    return app


class RecordingTransport(asyncio.Transport):
    """What the protocol hands the socket, one entry per write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _served(
    protocol_class: type[HttpToolsProtocol], app: App, request: bytes = b"GET / HTTP/1.1\r\nHost: shop\r\n\r\n"
) -> RecordingTransport:
    config = Config(app, lifespan="off", log_level="warning")
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop())
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(100):
        await asyncio.sleep(0)
    return transport


async def test_uvicorns_own_protocol_writes_the_head_and_the_body_apart() -> None:
    """Why the layer exists: if uvicorn ever sends a response in one write, it can go."""
    transport = await _served(HttpToolsProtocol, _app(BODY))
    assert len(transport.writes) == 2
    assert transport.writes[1] == BODY


async def test_a_response_is_one_write() -> None:
    transport = await _served(serving.CoalescingHttpToolsProtocol, _app(BODY))
    assert len(transport.writes) == 1
    response = transport.writes[0]
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 17\r\n" in response
    assert response.endswith(b"\r\n\r\n" + BODY)


async def test_a_large_body_is_not_held_or_copied_and_comes_after_its_head() -> None:
    transport = await _served(serving.CoalescingHttpToolsProtocol, _app(LARGE_BODY))
    assert len(transport.writes) == 2
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.writes[0].endswith(b"\r\n\r\n")
    assert transport.writes[1] == LARGE_BODY


async def test_chunks_sent_in_later_turns_follow_in_order() -> None:
    transport = await _served(serving.CoalescingHttpToolsProtocol, _app(b"abc", chunks=3))
    assert len(transport.writes) == 3
    assert transport.writes[0].endswith(b"\r\n\r\nabc")
    assert b"".join(transport.writes).endswith(b"\r\n\r\nabcabcabc")


async def test_a_connection_closed_after_its_response_sends_the_response_first() -> None:
    transport = await _served(serving.CoalescingHttpToolsProtocol, _app(BODY, close=True))
    assert transport.closed
    assert len(transport.writes) == 1
    assert transport.writes[0].endswith(BODY)


async def test_two_pipelined_requests_get_both_responses_in_order() -> None:
    request = b"GET /1 HTTP/1.1\r\nHost: shop\r\n\r\nGET /2 HTTP/1.1\r\nHost: shop\r\n\r\n"

    async def app(scope: Message, receive: Any, send: Any) -> None:
        body = scope["path"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": body})

    transport = await _served(serving.CoalescingHttpToolsProtocol, app, request)
    sent = b"".join(transport.writes)
    assert sent.count(b"HTTP/1.1 200 OK") == 2
    assert sent.index(b"\r\n\r\n/1") < sent.index(b"\r\n\r\n/2")


@pytest.mark.parametrize("body", [BODY, LARGE_BODY], ids=["small", "large"])
async def test_keep_alive_requests_over_a_real_socket(body: bytes) -> None:
    config = Config(_app(body), lifespan="off", log_level="warning")
    config.load()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: serving.CoalescingHttpToolsProtocol(config=config, server_state=ServerState(), app_state={}),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(5):
                response = await client.get("/")
                assert response.status_code == 200
                assert response.content == body
    finally:
        server.close()
        await server.wait_closed()


async def test_writes_by_any_method_keep_their_order() -> None:
    transport = RecordingTransport()
    writes = serving.CoalescedWrites(transport, asyncio.get_running_loop())
    writes.write(b"head ")
    writes.writelines([b"one ", b"two "])
    writes.write(LARGE_BODY)
    writes.write(b" tail")
    writes.close()
    assert transport.closed
    assert b"".join(transport.writes) == b"head one two " + LARGE_BODY + b" tail"
    assert transport.writes[0] == b"head one two "


def test_tienda_serve_uses_it() -> None:
    assert serving.SERVER_OPTIONS["http"] is serving.CoalescingHttpToolsProtocol
