"""The RabbitMQ bus against the real broker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from tests import backends
from tests.conftest import Shop
from tests.platform.test_outbox import _consumer, _event, _outbox_rows, _processed
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

    async def test_a_batch_with_a_failing_event_goes_one_by_one_and_loses_nothing(self, shop: Shop) -> None:
        url = backends.url_of("amqp")
        prefix = f"tienda-test-{uuid.uuid4().hex[:8]}"
        db = shop.platform.db("users")
        events = [_event() for _ in range(12)]
        flaky = events[5]
        failures = {"left": 2}  # in its batch, then alone: retried later, after the others
        committed: list[str] = []
        everything = asyncio.Event()

        async def handle(event: Event, uow: UnitOfWork) -> None:
            if event.id == flaky.id and failures["left"]:
                failures["left"] -= 1
                raise RuntimeError("down for a moment")

            async def record() -> None:
                committed.append(event.id)
                if len(committed) >= len(events):
                    everything.set()

            uow.after_commit(record)

        sub = Subscription(Consumer("test.batches", "users", ("user.registered",), handle), db)
        publisher = RabbitBus(url, prefix=prefix)
        listener = RabbitBus(url, prefix=prefix, batch_size=16, drainers=1)
        try:
            await listener.consume([sub])
        except OSError as exc:
            backends.unreachable("amqp", exc)
        try:
            await asyncio.gather(*(publisher.publish(event) for event in events))
            await asyncio.wait_for(everything.wait(), timeout=15)
            await asyncio.sleep(0.5)  # nothing more arrives

            assert sorted(committed) == sorted(e.id for e in events)  # each once, the flaky one after its retry
            assert committed[-1] == flaky.id
            assert await _processed(shop, "test.batches") == len(events)
        finally:
            await listener.close()
            await publisher.close()

    async def test_a_batch_is_sent_at_once_and_arrives_in_order_with_each_outcome(self, shop: Shop) -> None:
        url = backends.url_of("amqp")
        prefix = f"tienda-test-{uuid.uuid4().hex[:8]}"
        db = shop.platform.db("users")
        events = [_event({"n": n}) for n in range(40)]
        unroutable = Event(
            id=str(uuid.uuid4()), type="x" * 300, source="users", occurred_at=datetime.now(UTC), payload={}
        )  # a routing key longer than AMQP allows: refused before it is sent
        arrived: list[str] = []
        everything = asyncio.Event()

        async def handle(event: Event, uow: UnitOfWork) -> None:
            arrived.append(event.id)
            if len(arrived) == len(events):
                everything.set()

        sub = Subscription(Consumer("test.in_order", "users", ("user.registered",), handle), db)
        publisher = RabbitBus(url, prefix=prefix)
        listener = RabbitBus(url, prefix=prefix, drainers=1)
        try:
            await listener.consume([sub])
        except OSError as exc:
            backends.unreachable("amqp", exc)
        try:
            outcomes = await publisher.publish_many([*events[:20], unroutable, *events[20:]])
            await asyncio.wait_for(everything.wait(), timeout=15)

            assert [o is None for o in outcomes] == [True] * 20 + [False] + [True] * 20
            assert arrived == [e.id for e in events]
        finally:
            await listener.close()
            await publisher.close()

    async def test_an_event_no_queue_takes_is_confirmed_and_not_sent_back(self, shop: Shop) -> None:
        publisher = RabbitBus(backends.url_of("amqp"), prefix=f"tienda-test-{uuid.uuid4().hex[:8]}")
        returned: list[object] = []
        try:
            try:
                await publisher.ping()
            except OSError as exc:
                backends.unreachable("amqp", exc)
            assert publisher._channel is not None
            publisher._channel.return_callbacks.add(lambda _channel, message: returned.append(message))
            nobody = Event(
                id=str(uuid.uuid4()),
                type="test.nobody_listens",
                source="users",
                occurred_at=datetime.now(UTC),
                payload={},
            )
            assert await publisher.publish_many([nobody, nobody]) == [None, None]
            await publisher.publish(nobody)
            await asyncio.sleep(0.2)  # a return would arrive after the confirm
            assert returned == []
        finally:
            await publisher.close()
