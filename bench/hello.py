"""The HTTP ceiling: the smallest ASGI app there is, served by the same server with the
same worker count as the shop, so a scenario's ratio to it is the share of the machine's
HTTP capacity that the shop's own work leaves.

`python -m bench.hello PORT WORKERS` serves it on uvicorn as `tienda serve` serves the shop
(uvloop, httptools, a listening socket per worker: `tienda.platform.serving`)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY = b'{"hello":"world"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    from tienda.platform import serving

    port, workers = map(int, sys.argv[1:3])
    serving.run("bench.hello:app", host="127.0.0.1", port=port, workers=workers, **serving.SERVER_OPTIONS)
