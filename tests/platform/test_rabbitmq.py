"""The RabbitMQ bus against the real broker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from tests import backends
from tests.conftest import Shop
from tests.platform.test_outbox import _consumer, _outbox_rows
from tienda.platform.db import UnitOfWork
from tienda.platform.events import Consumer, Event, OutboxRelay, Subscription
from tienda.platform.rabbitmq import RabbitBus


@pytest.fixture
def backend() -> str:
    return "sqlite"


class TestRabbitMQ:
    async def test_events_cross_the_broker_and_are_consumed_once(self, shop: Shop) -> None:
        url = backends.url_of("amqp")
        prefix = f"tienda-test-{uuid.uuid4().hex[:8]}"
        seen: list[str] = []
        db = shop.platform.db("users")
        done = asyncio.Event()
        consumer = _consumer("test.rabbit", seen)

        async def handle(event: Event, uow: UnitOfWork) -> None:
            await consumer.handler(event, uow)
            if len(seen) == 2:
                done.set()

        sub = Subscription(Consumer("test.rabbit", "users", ("user.registered",), handle), db)
        publisher = RabbitBus(url, prefix=prefix)
        listener = RabbitBus(url, prefix=prefix)
        try:
            await listener.consume([sub])
        except OSError as exc:
            backends.unreachable("amqp", exc)
        try:
            relay = OutboxRelay([db], publisher)
            await shop.register("a@example.com")
            await shop.register("b@example.com")
            assert await relay.drain() == 2
            await asyncio.wait_for(done.wait(), timeout=10)

            # The broker redelivers (at least once): the consumer applies it once.
            [first, _] = await _outbox_rows(shop)
            await publisher.publish(
                Event(
                    id=str(first["event_id"]),
                    type="user.registered",
                    source="users",
                    occurred_at=datetime.now(UTC),
                    payload={},
                )
            )
            await asyncio.sleep(0.5)

            rows = await _outbox_rows(shop)
            assert seen == [r["event_id"] for r in rows]
            assert all(r["published_at"] is not None for r in rows)
        finally:
            await listener.close()
            await publisher.close()
