"""The in-memory bus: RabbitMQ's semantics inside one process, for `make run` and fast tests.

Every bus opened on the same `memory://<name>` URL shares one broker, so services running in one
process talk to each other. Messages go through the same CloudEvents encoding, topic routing,
prefetch, retry schedule and dead-letter queue as on RabbitMQ; nothing survives the process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from outrigger.bus.cloudevents import encode_data, encode_headers
from outrigger.bus.dispatch import (
    Consumer,
    MemorySeenIds,
    RetryPolicy,
    dead_letter_headers,
    delivery_of,
    reply_address,
    retry_headers,
)
from outrigger.bus.port import DLX, Ack
from outrigger.bus.telemetry import DEAD_LETTERED, DEFAULT_EXCHANGE, PUBLISHED, BusTracing
from outrigger.errors import MessagingError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from opentelemetry.trace import TracerProvider

    from outrigger.bus.port import CloudEvent, Delivery, Handler, SeenIds


@dataclass(frozen=True, slots=True)
class _Message:
    body: bytes
    headers: dict[str, Any]
    content_type: str | None
    message_id: str | None
    exchange: str
    routing_key: str
    reply_to: str | None = None
    correlation_id: str | None = None


@lru_cache(maxsize=4096)
def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: words split on dots, `*` is exactly one word, `#` zero or more."""
    return _match(tuple(pattern.split(".")), tuple(routing_key.split(".")))


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return _match(rest, words) or (bool(words) and _match(pattern, words[1:]))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])


class MemoryBroker:
    """Exchanges, bindings, queues and pending retries shared by the buses on one URL."""

    def __init__(self) -> None:
        self.bindings: dict[str, list[tuple[str, str]]] = {}
        self.queues: dict[str, asyncio.Queue[_Message]] = {}
        self.users = 0
        self._timers: set[asyncio.Task[None]] = set()

    def declare_exchange(self, name: str) -> None:
        self.bindings.setdefault(name, [])

    def declare_queue(self, name: str) -> asyncio.Queue[_Message]:
        return self.queues.setdefault(name, asyncio.Queue())

    def bind(self, queue: str, exchange: str, pattern: str) -> None:
        bindings = self.bindings.setdefault(exchange, [])
        if (pattern, queue) not in bindings:
            bindings.append((pattern, queue))

    def route(self, message: _Message) -> None:
        if message.exchange == "":  # the default exchange: to the queue of that name, if any
            if (named := self.queues.get(message.routing_key)) is not None:
                named.put_nowait(message)
            return
        bindings = self.bindings.get(message.exchange, ())
        targets = {
            queue for pattern, queue in bindings if topic_matches(pattern, message.routing_key)
        }
        for queue in targets:
            self.queues[queue].put_nowait(message)

    def enqueue_later(self, queue: str, delay: float, message: _Message) -> None:
        task = asyncio.get_running_loop().create_task(self._later(queue, delay, message))
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _later(self, queue: str, delay: float, message: _Message) -> None:
        await asyncio.sleep(delay)
        if queue in self.queues:
            self.queues[queue].put_nowait(message)

    def shutdown(self) -> None:
        for task in self._timers:
            task.cancel()


_brokers: dict[str, MemoryBroker] = {}


class MemoryBus:
    """A `MessageBus` held in process memory."""

    system = "memory"

    def __init__(
        self,
        url: str = "memory://",
        *,
        source: str,
        prefetch: int = 100,
        seen_ids: SeenIds | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.source = source
        self.tracing = BusTracing(self.system, tracer_provider=tracer_provider)
        self.prefetch = prefetch
        self._name = parts.netloc + parts.path
        self._seen = seen_ids or MemorySeenIds()
        self._broker: MemoryBroker | None = None
        self._subscriptions: set[MemorySubscription] = set()

    async def start(self) -> None:
        if self._broker is None:
            self._broker = _brokers.setdefault(self._name, MemoryBroker())
            self._broker.users += 1

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.cancel()
        broker, self._broker = self._broker, None
        if broker is not None:
            broker.users -= 1
            if broker.users == 0:
                broker.shutdown()
                _brokers.pop(self._name, None)

    async def check(self) -> None:
        self._running()

    async def declare_exchange(self, name: str) -> None:
        self._running().declare_exchange(name)

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        event: CloudEvent,
        *,
        reply_to: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self._publish(
            exchange,
            [(routing_key, event)],
            batch=False,
            reply_to=reply_to,
            correlation_id=correlation_id,
        )

    async def reply(self, delivery: Delivery, event: CloudEvent) -> None:
        queue, correlation_id = reply_address(delivery)
        self._publish("", [(queue, event)], batch=False, correlation_id=correlation_id)

    async def publish_many(self, exchange: str, messages: Sequence[tuple[str, CloudEvent]]) -> None:
        if messages:
            self._publish(exchange, messages, batch=True)

    def _publish(
        self,
        exchange: str,
        messages: Sequence[tuple[str, CloudEvent]],
        *,
        batch: bool,
        reply_to: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        broker = self._running()
        if exchange:  # "": the default exchange, which routes by queue name
            broker.declare_exchange(exchange)
        with self.tracing.publishing(exchange, messages, batch=batch) as traces:
            for n, (routing_key, event) in enumerate(messages):
                headers = encode_headers(event, traces[n] if traces else None)
                message = _Message(
                    encode_data(event),
                    headers,
                    event.datacontenttype,
                    event.id,
                    exchange,
                    routing_key,
                    reply_to,
                    correlation_id,
                )
                broker.route(message)
        PUBLISHED.labels(exchange or DEFAULT_EXCHANGE).inc(len(messages))

    async def subscribe(
        self,
        queue: str,
        bindings: Sequence[tuple[str, str]],
        handler: Handler,
        *,
        max_attempts: int = 5,
        retry_delay_seconds: float = 1.0,
        max_retry_delay_seconds: float = 300.0,
        prefetch: int | None = None,
        dedupe: bool = True,
    ) -> MemorySubscription:
        broker = self._running()
        policy = RetryPolicy(max_attempts, retry_delay_seconds, max_retry_delay_seconds)
        broker.declare_queue(queue)
        broker.declare_queue(f"{queue}.dlq")
        broker.bind(f"{queue}.dlq", DLX, queue)
        for exchange, pattern in bindings:
            broker.bind(queue, exchange, pattern)
        consumer = Consumer(self.tracing, queue, handler, self._seen if dedupe else None)
        subscription = MemorySubscription(self, broker, consumer, policy, prefetch or self.prefetch)
        self._subscriptions.add(subscription)
        return subscription

    def forget(self, subscription: MemorySubscription) -> None:
        self._subscriptions.discard(subscription)

    def _running(self) -> MemoryBroker:
        if self._broker is None:
            raise MessagingError("the in-memory bus is not started, or already closed")
        return self._broker


class MemorySubscription:
    """Takes messages from one queue, at most `prefetch` in progress at once."""

    def __init__(
        self,
        bus: MemoryBus,
        broker: MemoryBroker,
        consumer: Consumer,
        policy: RetryPolicy,
        prefetch: int,
    ) -> None:
        self.queue = consumer.queue
        self._bus, self._broker, self._consumer, self._policy = bus, broker, consumer, policy
        self._messages = broker.queues[self.queue]
        self._slots = asyncio.Semaphore(prefetch)
        self._in_progress: set[asyncio.Task[None]] = set()
        self._receiver: asyncio.Task[None] | None = asyncio.create_task(self._receive())

    async def cancel(self) -> None:
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
            await asyncio.gather(*self._in_progress, return_exceptions=True)
        self._bus.forget(self)

    async def _receive(self) -> None:
        while True:
            await self._slots.acquire()
            message = await self._messages.get()
            task = asyncio.create_task(self._deliver(message))
            self._in_progress.add(task)
            task.add_done_callback(self._in_progress.discard)

    async def _deliver(self, message: _Message) -> None:
        try:
            delivery = delivery_of(
                self.queue,
                message.body,
                message.headers,
                message.content_type,
                message.message_id,
                message.exchange,
                message.routing_key,
                reply_to=message.reply_to,
                correlation_id=message.correlation_id,
            )
        except ValueError as exc:
            self._dead_letter(
                message, message.exchange, message.routing_key, 1, f"undecodable: {exc}"
            )
            self._slots.release()
            return
        try:
            outcome = await self._consumer.handle(delivery)
        finally:
            self._slots.release()
        if isinstance(outcome, Ack):
            return
        if self._policy.retries(outcome, delivery.attempt):
            headers = retry_headers(
                message.headers, delivery.exchange, delivery.routing_key, delivery.attempt + 1
            )
            copy = replace(message, headers=headers, exchange="", routing_key=self.queue)
            self._broker.enqueue_later(self.queue, self._policy.delay(delivery.attempt), copy)
        else:
            self._dead_letter(
                message, delivery.exchange, delivery.routing_key, delivery.attempt, outcome.reason
            )

    def _dead_letter(
        self, message: _Message, exchange: str, routing_key: str, attempt: int, reason: str
    ) -> None:
        headers = dead_letter_headers(message.headers, exchange, routing_key, attempt, reason)
        self._broker.route(replace(message, headers=headers, exchange=DLX, routing_key=self.queue))
        DEAD_LETTERED.labels(self.queue).inc()
