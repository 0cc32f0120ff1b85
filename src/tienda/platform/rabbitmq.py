"""The production event bus: a durable topic exchange on RabbitMQ (aio-pika).

Events are published persistent with publisher confirms, so the relay marks an outbox row
published only once the broker has it. Each consumer has its own durable queue bound to the
event types it handles; a message is acknowledged after the consumer's transaction
committed. A failing message is retried with backoff, then parked in a dead-letter queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection

from tienda.platform.events import Event, Subscription
from tienda.platform.observability import get_logger

log = get_logger("tienda.rabbitmq")


class RabbitBus:
    def __init__(
        self, url: str, *, prefix: str = "tienda", max_attempts: int = 8, prefetch: int = 32, in_flight: int = 8
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.max_attempts = max_attempts
        self.prefetch = prefetch
        # Deliveries at once, over all queues: a consumer's transaction may ask another module
        # for something (a second connection of the same pool), so the process never runs
        # more of them than half a pool could serve.
        self._in_flight = asyncio.Semaphore(in_flight)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._lock = asyncio.Lock()

    @property
    def exchange_name(self) -> str:
        return f"{self.prefix}.events"

    async def _ensure(self) -> AbstractExchange:
        if self._exchange is not None:
            return self._exchange
        async with self._lock:
            if self._exchange is None:
                self._connection = await aio_pika.connect_robust(self.url, timeout=10)
                self._channel = await self._connection.channel(publisher_confirms=True)
                await self._channel.set_qos(prefetch_count=self.prefetch)
                self._exchange = await self._channel.declare_exchange(
                    self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
                await self._channel.declare_queue(f"{self.prefix}.dead-letters", durable=True)
        assert self._exchange is not None
        return self._exchange

    async def ping(self) -> None:
        await self._ensure()

    async def publish(self, event: Event) -> None:
        exchange = await self._ensure()
        await exchange.publish(_message(event), routing_key=event.type)

    async def consume(self, subscriptions: Iterable[Subscription]) -> None:
        """Start consuming for each subscription; returns once the consumers are attached."""
        await self._ensure()
        assert self._channel is not None
        assert self._exchange is not None
        for sub in subscriptions:
            queue = await self._channel.declare_queue(f"{self.prefix}.{sub.consumer.name}", durable=True)
            for event_type in sub.consumer.event_types:
                await queue.bind(self._exchange, routing_key=event_type)
            await queue.consume(self._handler(sub, queue.name))

    def _handler(self, sub: Subscription, queue_name: str) -> Any:
        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                event = Event.from_json(message.body)
            except Exception:
                log.error("undecodable_message", queue=queue_name, message_id=message.message_id)
                await self._park(message, queue_name, "undecodable")
                await message.ack()
                return
            try:
                async with self._in_flight:
                    await sub.deliver(event)
            except Exception as exc:
                attempts = int(str((message.headers or {}).get("x-attempts", 0))) + 1
                log.warning(
                    "consumer_failed", consumer=sub.consumer.name, event_id=event.id, attempts=attempts, error=repr(exc)
                )
                if attempts >= self.max_attempts:
                    await self._park(message, queue_name, repr(exc))
                else:
                    await asyncio.sleep(min(0.2 * 2**attempts, 30))
                    assert self._channel is not None
                    retry = _message(event, headers={"x-attempts": attempts})
                    await self._channel.default_exchange.publish(retry, routing_key=queue_name)
            await message.ack()

        return on_message

    async def _park(self, message: AbstractIncomingMessage, queue_name: str, reason: str) -> None:
        assert self._channel is not None
        parked = aio_pika.Message(
            message.body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            headers={"x-queue": queue_name, "x-reason": reason[:500]},
        )
        await self._channel.default_exchange.publish(parked, routing_key=f"{self.prefix}.dead-letters")

    async def delete_queues(self, consumer_names: Iterable[str]) -> None:
        """Deletes these consumers' queues and the dead letters, with what they hold (a bench
        or a test starting afresh on a shared broker)."""
        await self._ensure()
        assert self._channel is not None
        for name in [*consumer_names, "dead-letters"]:
            await self._channel.queue_delete(f"{self.prefix}.{name}")

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = self._exchange = None


def _message(event: Event, headers: dict[str, Any] | None = None) -> aio_pika.Message:
    return aio_pika.Message(
        event.to_json(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event.id,
        type=event.type,
        headers=headers or {},
    )
