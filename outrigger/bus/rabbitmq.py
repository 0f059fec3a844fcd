"""The RabbitMQ bus (aio-pika): publisher confirms, quorum work queues, automatic reconnection.

One robust connection carries a confirming publisher channel, a topology channel for exchanges
and one channel per subscription. After a reconnection aio-pika declares the exchanges, queues,
bindings and consumers again; publishes made meanwhile wait (a bounded time) for it, and
`publish_many` sends again what the lost connection left unconfirmed. An outage is logged as
one warning (see `rabbitmq_connection`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aio_pika
from aio_pika.exceptions import ChannelClosed, ChannelNotFoundEntity
from aiormq import spec

from outrigger.bus.cloudevents import encode_data, encode_headers
from outrigger.bus.dispatch import Consumer, MemorySeenIds, RetryPolicy, reply_address
from outrigger.bus.port import DLX
from outrigger.bus.rabbitmq_acks import FAILURES
from outrigger.bus.rabbitmq_connection import Outages, quiet_reconnect_noise
from outrigger.bus.rabbitmq_consumer import PERSISTENT, RabbitMQSubscription
from outrigger.bus.rabbitmq_publisher import ConfirmingPublisher, Outgoing
from outrigger.bus.telemetry import DEFAULT_EXCHANGE, PUBLISH_FAILURES, PUBLISHED, BusTracing
from outrigger.errors import MessagingError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
    from opentelemetry.trace import TracerProvider
    from prometheus_client import Counter

    from outrigger.bus.port import CloudEvent, Delivery, Handler, SeenIds


class RabbitMQBus:
    """A `MessageBus` on RabbitMQ.

    `in_flight` bounds the publishes awaiting their confirm at once in one `publish_many`;
    `timeout_seconds` bounds each wait: for a confirm, a declaration, a reconnection.
    """

    system = "rabbitmq"

    def __init__(
        self,
        url: str,
        *,
        source: str,
        prefetch: int = 100,
        timeout_seconds: float = 10.0,
        reconnect_interval_seconds: float = 1.0,
        in_flight: int = 256,
        seen_ids: SeenIds | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port or 5672
        self.source = source
        self.prefetch = prefetch
        self.timeout = timeout_seconds
        self.in_flight = in_flight
        self.tracing = BusTracing(self.system, tracer_provider=tracer_provider, server=(host, port))
        self._url = url
        self._where = f"RabbitMQ at {host}:{port}"
        self._reconnect_interval = reconnect_interval_seconds
        self._seen = seen_ids or MemorySeenIds()
        self._outages = Outages(self._where, reconnect_interval_seconds)
        self._connection: AbstractRobustConnection | None = None
        self._publisher: ConfirmingPublisher | None = None
        self._topology: AbstractRobustChannel | None = None
        self._exchanges: set[str] = set()
        self._published_counters: dict[str, Counter] = {}
        self._subscriptions: set[RabbitMQSubscription] = set()

    async def start(self) -> None:
        if self._connection is not None:
            return
        quiet_reconnect_noise()
        try:
            async with self.deadline("connecting"):
                self._connection = await aio_pika.connect_robust(
                    self._url,
                    timeout=self.timeout,
                    reconnect_interval=self._reconnect_interval,
                    client_properties={"connection_name": f"outrigger {self.source}"},
                )
                self._outages.watch(self._connection)
                self._publisher = ConfirmingPublisher(
                    await self.channel(publisher_confirms=True),
                    self._connection.connected,
                    where=self._where,
                    timeout=self.timeout,
                    in_flight=self.in_flight,
                )
                self._topology = await self.channel(publisher_confirms=False)
                await self.declare_exchange(DLX)
        except MessagingError:
            await self.close()
            raise

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.cancel()
        self._outages.stop()
        connection, self._connection = self._connection, None
        self._publisher = self._topology = None
        self._exchanges.clear()
        if connection is not None:
            await connection.close()

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._connection.connected.is_set()

    async def check(self) -> None:
        connection, publisher = self._running()
        if not connection.connected.is_set() or publisher.channel.is_closed:
            raise MessagingError(f"{self._where} is unreachable; reconnecting")

    async def declare_exchange(self, name: str) -> None:
        if self._topology is None:
            raise MessagingError("the RabbitMQ bus is not started, or already closed")
        async with self.deadline(f"declaring exchange {name!r}"):
            await self._topology.declare_exchange(
                name, aio_pika.ExchangeType.TOPIC, durable=True, timeout=self.timeout
            )
        self._exchanges.add(name)

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        event: CloudEvent,
        *,
        reply_to: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        _, publisher = self._running()
        try:
            if exchange and exchange not in self._exchanges:  # "": the default, never declared
                await self.declare_exchange(exchange)
            messages = [(routing_key, event)]
            with self.tracing.publishing(exchange, messages, batch=False) as traces:
                message = _outgoing(
                    routing_key,
                    event,
                    traces[0] if traces else None,
                    reply_to=reply_to,
                    correlation_id=correlation_id,
                )
                await publisher.publish(exchange, message)
        except MessagingError as exc:
            self._failed(exchange, exc)
            raise
        self._published(exchange).inc()

    async def reply(self, delivery: Delivery, event: CloudEvent) -> None:
        queue, correlation_id = reply_address(delivery)
        await self.publish("", queue, event, correlation_id=correlation_id)

    async def publish_many(self, exchange: str, messages: Sequence[tuple[str, CloudEvent]]) -> None:
        if not messages:
            return
        _, publisher = self._running()
        try:
            if exchange not in self._exchanges:
                await self.declare_exchange(exchange)
            with self.tracing.publishing(exchange, messages, batch=True) as traces:
                await publisher.publish_all(
                    exchange,
                    [
                        _outgoing(key, event, traces[n] if traces else None)
                        for n, (key, event) in enumerate(messages)
                    ],
                )
        except MessagingError as exc:
            self._failed(exchange, exc)
            raise
        self._published(exchange).inc(len(messages))

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
    ) -> RabbitMQSubscription:
        self._running()
        policy = RetryPolicy(max_attempts, retry_delay_seconds, max_retry_delay_seconds)
        for exchange in {exchange for exchange, _ in bindings} - self._exchanges:
            await self.declare_exchange(exchange)
        consumer = Consumer(self.tracing, queue, handler, self._seen if dedupe else None)
        subscription = RabbitMQSubscription(self, consumer, policy)
        try:
            async with self.deadline(f"subscribing to {queue!r}"):
                await subscription.start(bindings, prefetch or self.prefetch)
        except MessagingError:
            await subscription.cancel()
            raise
        self._subscriptions.add(subscription)
        return subscription

    async def channel(self, *, publisher_confirms: bool) -> AbstractRobustChannel:
        """A new robust channel on the bus's connection."""
        if self._connection is None:
            raise MessagingError("the RabbitMQ bus is not started, or already closed")
        channel = self._connection.channel(publisher_confirms=publisher_confirms)
        await channel.initialize(timeout=self.timeout)
        return channel

    def forget(self, subscription: RabbitMQSubscription) -> None:
        self._subscriptions.discard(subscription)

    @contextlib.asynccontextmanager
    async def deadline(self, doing: str) -> AsyncIterator[None]:
        """Turns broker failures and waits longer than the timeout into MessagingError."""
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except ChannelClosed as exc:
            raise MessagingError(f"{self._where} refused {doing}: {exc}") from exc
        except FAILURES as exc:
            raise MessagingError(f"{doing}: {self._where} unreachable ({exc!r})") from exc

    async def forward(self, exchange: str, message: Outgoing) -> None:
        """Publishes one encoded message (a consumer's retry or dead letter), confirmed."""
        _, publisher = self._running()
        await publisher.publish(exchange, message)

    def _failed(self, exchange: str, error: MessagingError) -> None:
        PUBLISH_FAILURES.labels(exchange or DEFAULT_EXCHANGE).inc()
        if isinstance(error.__cause__, ChannelNotFoundEntity):  # deleted: declare it again
            self._exchanges.discard(exchange)

    def _published(self, exchange: str) -> Counter:
        counter = self._published_counters.get(exchange)
        if counter is None:
            counter = PUBLISHED.labels(exchange or DEFAULT_EXCHANGE)
            self._published_counters[exchange] = counter
        return counter

    def _running(self) -> tuple[AbstractRobustConnection, ConfirmingPublisher]:
        if self._connection is None or self._publisher is None:
            raise MessagingError("the RabbitMQ bus is not started, or already closed")
        return self._connection, self._publisher


def _outgoing(
    routing_key: str,
    event: CloudEvent,
    trace: Mapping[str, str] | None,
    *,
    reply_to: str | None = None,
    correlation_id: str | None = None,
) -> Outgoing:
    properties = spec.Basic.Properties(
        content_type=event.datacontenttype,
        headers=encode_headers(event, trace),
        delivery_mode=PERSISTENT,
        message_id=event.id,
        reply_to=reply_to,
        correlation_id=correlation_id,
    )
    return Outgoing(routing_key, encode_data(event), properties)
