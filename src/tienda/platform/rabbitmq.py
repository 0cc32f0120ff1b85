"""The production event bus: a durable topic exchange on RabbitMQ (aio-pika).

Events are published persistent with publisher confirms, so the relay marks an outbox row
published only once the broker has it. Each consumer has its own durable queue bound to the
event types it handles; the messages it has received are handled in batches, one unit of
work each (`Subscription.deliver_many`), and acknowledged after it committed. A batch that
fails is handled again one message at a time; a failing message is retried with backoff,
then parked in a dead-letter queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection

from tienda.platform.events import Event, Subscription
from tienda.platform.observability import get_logger

log = get_logger("tienda.rabbitmq")


class RabbitBus:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tienda",
        max_attempts: int = 8,
        prefetch: int = 32,
        in_flight: int = 8,
        batch_size: int = 16,
        drainers: int = 2,
        linger: float = 0.05,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.max_attempts = max_attempts
        self.prefetch = prefetch
        self.batch_size = batch_size
        # How long a consumer waits for more messages when fewer than a batch have come: a
        # stream of events (a stock change per reservation of a popular item) is then handled
        # in batches, one transaction and (of events one supersedes another) one change each,
        # instead of one by one, for at most this much more delay per hop.
        self.linger = linger
        # Per consumer: units of work under way at once (each with its own batch).
        self.drainers = drainers
        self._tasks: list[asyncio.Task[None]] = []
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
        await exchange.publish(_message(event), routing_key=event.type, mandatory=False)

    async def publish_many(self, events: Sequence[Event]) -> list[BaseException | None]:
        """All at once: each is sent as its turn comes (one channel, in order), and then all
        the broker's confirms are awaited together, not one round trip per event (a relay's
        batch is often seventy events under load); the broker acknowledges several in one frame.

        Not `mandatory`: an event no queue is bound to (no module here consumes `order.created`,
        say) is confirmed and dropped by the broker, where a mandatory one came back whole in a
        `basic.return` for this process to parse and ignore, once per checkout."""
        exchange = await self._ensure()
        sent = await asyncio.gather(
            *(exchange.publish(_message(event), routing_key=event.type, mandatory=False) for event in events),
            return_exceptions=True,
        )
        return [outcome if isinstance(outcome, BaseException) else None for outcome in sent]

    async def consume(self, subscriptions: Iterable[Subscription]) -> None:
        """Start consuming for each subscription; returns once the consumers are attached."""
        await self._ensure()
        assert self._channel is not None
        assert self._exchange is not None
        for sub in subscriptions:
            queue = await self._channel.declare_queue(f"{self.prefix}.{sub.consumer.name}", durable=True)
            for event_type in sub.consumer.event_types:
                await queue.bind(self._exchange, routing_key=event_type)
            inbox: asyncio.Queue[tuple[AbstractIncomingMessage, Event]] = asyncio.Queue()
            for n in range(self.drainers):
                self._tasks.append(
                    asyncio.create_task(self._drain(sub, queue.name, inbox), name=f"consume-{queue.name}-{n}")
                )
            await queue.consume(self._receiver(queue.name, inbox))

    def _receiver(self, queue_name: str, inbox: asyncio.Queue[tuple[AbstractIncomingMessage, Event]]) -> Any:
        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                event = Event.from_json(message.body)
            except Exception:
                log.error("undecodable_message", queue=queue_name, message_id=message.message_id)
                await self._park(message, queue_name, "undecodable")
                await message.ack()
                return
            inbox.put_nowait((message, event))  # acknowledged once handled (the prefetch bounds the inbox)

        return on_message

    async def _drain(
        self, sub: Subscription, queue_name: str, inbox: asyncio.Queue[tuple[AbstractIncomingMessage, Event]]
    ) -> None:
        """Takes what the queue has delivered, up to `batch_size` messages, and hands them to
        the consumer in one unit of work (`Subscription.deliver_many`); if that fails, one by
        one, so that only a failing message is retried."""
        while True:
            batch = [await inbox.get()]
            if self.linger and inbox.qsize() < self.batch_size - 1:
                await asyncio.sleep(self.linger)
            while len(batch) < self.batch_size and not inbox.empty():
                batch.append(inbox.get_nowait())
            try:
                async with self._in_flight:
                    await sub.deliver_many([event for _, event in batch])
            except Exception as exc:
                if len(batch) > 1:
                    log.info(
                        "batch_redelivered_one_by_one", consumer=sub.consumer.name, size=len(batch), error=repr(exc)
                    )
                for message, event in batch:
                    await self._deliver(sub, queue_name, message, event)
                continue
            for message, _ in batch:
                await message.ack()

    async def _deliver(
        self, sub: Subscription, queue_name: str, message: AbstractIncomingMessage, event: Event
    ) -> None:
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
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
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
