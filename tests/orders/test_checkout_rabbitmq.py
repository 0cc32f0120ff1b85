"""The whole checkout with events through the real RabbitMQ of this machine, as in production:
the outbox relay publishes to the broker and each module's consumers take their events from
their own queues. Then the broker goes away in the middle of checkouts (the shop reaches it
through a TCP proxy of the test's, which drops every connection and refuses new ones, as a
stopped broker does, without disturbing other tests sharing the server): orders still commit,
their events wait in the outboxes, and once the broker is back everything is delivered, each
event applied once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from tests import backends
from tests.carts.support import line, product_for_sale
from tests.conftest import Shop
from tests.orders.support import buyer, fill, rebuilt, stock
from tests.payments.support import payment_row, signed_event

ORDERS = "/api/v1/orders"


class BrokerProxy:
    """A TCP forwarder to the broker that can be switched off (every connection cut) and on."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.pipes):
            writer.transport.abort()
        self.pipes.clear()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.pipes |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()
            self.pipes.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
async def proxy() -> AsyncIterator[BrokerProxy]:
    parts = urlsplit(backends.url_of("amqp"))
    found = BrokerProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    await found.start()
    yield found
    with contextlib.suppress(Exception):
        await found.stop()


@pytest.fixture
async def broker_shop(shop: Shop, proxy: BrokerProxy) -> AsyncIterator[Shop]:
    parts = urlsplit(backends.url_of("amqp"))
    url = parts._replace(
        netloc=f"{parts.username or 'guest'}:{parts.password or 'guest'}@127.0.0.1:{proxy.port}"
    ).geturl()
    async with rebuilt(shop, broker_url=url, broker_prefix=f"tienda-test-{uuid.uuid4().hex[:8]}") as on_broker:
        try:
            await on_broker.platform.start_consumers()
        except OSError as exc:
            backends.unreachable("amqp", exc)
        on_broker.platform.relay.poll_interval = 0.05
        on_broker.platform.relay.start()
        yield on_broker


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.1)


async def status_of(shop: Shop, order_id: str) -> str:
    return str(await shop.scalar("orders", "SELECT status FROM orders WHERE order_id = :o", o=order_id))


async def unpublished(shop: Shop) -> int:
    total = 0
    for db in shop.platform.databases.values():
        table = db.outbox.outbox
        async with db.engine.connect() as conn:
            total += int((await conn.execute(select(func.count()).where(table.c.published_at.is_(None)))).scalar() or 0)
    return total


async def checkout(shop: Shop, email: str, product: dict[str, Any]) -> tuple[str, Any]:
    """A buyer's gateway order and the gateway's capture of it (answered by the shop)."""
    who = await buyer(shop, email)
    await fill(shop, who, line(product, 1))
    placed = await shop.client.post(ORDERS, json=who.body(paymentMethod="PAYMENT_GATEWAY"), headers=who.auth)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    body, headers = signed_event(shop, await payment_row(shop, order["paymentId"]))
    captured = await shop.client.post("/api/v1/payments/webhook", content=body, headers=headers)
    assert captured.json()["outcome"] == "CAPTURED", captured.text
    return order["orderId"], who


class TestCheckoutOverRabbitMQ:
    async def test_a_paid_order_is_confirmed_through_the_broker(self, broker_shop: Shop) -> None:
        shop = broker_shop
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin, price=499, stock=5)

        order_id, _ = await checkout(shop, "asha@example.com", shirt)

        async def confirmed() -> bool:
            return await status_of(shop, order_id) == "CONFIRMED"

        await eventually(confirmed)
        assert await stock(shop, shirt) == (4, 0, 4)
        await eventually(lambda: _mails_about(shop, order_id, 1))

    async def test_the_broker_goes_away_mid_checkout_and_nothing_is_lost(
        self, broker_shop: Shop, proxy: BrokerProxy
    ) -> None:
        shop = broker_shop
        _, admin = await shop.admin()
        shirt = await product_for_sale(shop, admin, price=499, stock=10)
        first, _ = await checkout(shop, "first@example.com", shirt)
        await eventually(lambda: _is(shop, first, "CONFIRMED"))

        # when the broker stops
        await proxy.stop()
        # then checkouts still commit: orders, payments captured, their events in the outboxes
        during = [await checkout(shop, f"b{n}@example.com", shirt) for n in range(3)]
        await asyncio.sleep(1.0)
        assert [await status_of(shop, order_id) for order_id, _ in during] == ["CREATED"] * 3
        assert await unpublished(shop) > 0

        # when it is back, everything waiting is delivered and applied once
        await proxy.start()
        for order_id, _ in during:
            await eventually(lambda order_id=order_id: _is(shop, order_id, "CONFIRMED"), within=60)
        await eventually(lambda: _none_waiting(shop), within=60)
        assert await stock(shop, shirt) == (6, 0, 6)
        confirmed = [e["orderId"] for e in await shop.events("orders", "order.confirmed")]
        assert sorted(confirmed) == sorted([first] + [o for o, _ in during])
        for order_id in [first] + [o for o, _ in during]:
            await eventually(lambda order_id=order_id: _mails_about(shop, order_id, 1))
        await asyncio.sleep(0.5)
        for order_id in [first] + [o for o, _ in during]:
            assert await _mails_about(shop, order_id, 1)


async def _is(shop: Shop, order_id: str, status: str) -> bool:
    return await status_of(shop, order_id) == status


async def _none_waiting(shop: Shop) -> bool:
    return await unpublished(shop) == 0


async def _mails_about(shop: Shop, order_id: str, count: int) -> bool:
    """Exactly `count` confirmation e-mails mention the order."""
    return (
        sum(order_id in str(m["Subject"]) or order_id in m.get_body(("plain",)).get_content() for m in shop.mails())
        == count
    )
