"""The RabbitMQ bus (aio-pika): publisher confirms, quorum work queues, automatic reconnection.

One robust connection carries a confirming publisher channel, a topology channel for exchanges
and one channel per subscription. After a reconnection aio-pika declares the exchanges, queues,
bindings and consumers again; publishes made meanwhile wait (a bounded time) for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aio_pika
from aio_pika.exceptions import (
    ChannelClosed,
    ChannelInvalidStateError,
    ChannelNotFoundEntity,
    DeliveryError,
)
from pamqp.commands import Basic

from outrigger.bus.cloudevents import encode_data, encode_headers
from outrigger.bus.dispatch import Consumer, MemorySeenIds, RetryPolicy
from outrigger.bus.port import DLX
from outrigger.bus.rabbitmq_batch import Publish, write_batch
from outrigger.bus.rabbitmq_consumer import FAILURES, PERSISTENT, RabbitMQSubscription
from outrigger.bus.telemetry import PUBLISH_FAILURES, PUBLISHED, publish_span
from outrigger.errors import MessagingError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
    from prometheus_client import Counter

    from outrigger.bus.port import CloudEvent, Handler, SeenIds


class RabbitMQBus:
    """A `MessageBus` on RabbitMQ."""

    system = "rabbitmq"

    def __init__(
        self,
        url: str,
        *,
        source: str,
        prefetch: int = 100,
        timeout_seconds: float = 10.0,
        reconnect_interval_seconds: float = 1.0,
        messages_per_write: int = 256,
        seen_ids: SeenIds | None = None,
    ) -> None:
        self.source = source
        self.prefetch = prefetch
        self.timeout = timeout_seconds
        self.messages_per_write = messages_per_write
        self._url = url
        self._where = f"RabbitMQ at {urlsplit(url).hostname}:{urlsplit(url).port or 5672}"
        self._reconnect_interval = reconnect_interval_seconds
        self._seen = seen_ids or MemorySeenIds()
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractRobustChannel | None = None
        self._topology: AbstractRobustChannel | None = None
        self._exchanges: set[str] = set()
        self._published_counters: dict[str, Counter] = {}
        self._subscriptions: set[RabbitMQSubscription] = set()

    async def start(self) -> None:
        if self._connection is not None:
            return
        try:
            async with self.deadline("connecting"):
                self._connection = await aio_pika.connect_robust(
                    self._url,
                    timeout=self.timeout,
                    reconnect_interval=self._reconnect_interval,
                    client_properties={"connection_name": f"outrigger {self.source}"},
                )
                self._publisher = await self.channel(publisher_confirms=True)
                self._topology = await self.channel(publisher_confirms=False)
                await self.declare_exchange(DLX)
        except MessagingError:
            await self.close()
            raise

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.cancel()
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
        if not connection.connected.is_set() or publisher.is_closed:
            raise MessagingError(f"{self._where} is unreachable; reconnecting")

    async def declare_exchange(self, name: str) -> None:
        if self._topology is None:
            raise MessagingError("the RabbitMQ bus is not started, or already closed")
        async with self.deadline(f"declaring exchange {name!r}"):
            await self._topology.declare_exchange(
                name, aio_pika.ExchangeType.TOPIC, durable=True, timeout=self.timeout
            )
        self._exchanges.add(name)

    async def publish(self, exchange: str, routing_key: str, event: CloudEvent) -> None:
        try:
            if exchange not in self._exchanges:
                await self.declare_exchange(exchange)
            with publish_span(self.system, exchange, 1) as trace_headers:
                properties = _properties(event, trace_headers)
                body = encode_data(event)
                await self.send(
                    exchange, routing_key, body, properties, confirm_timeout=self.timeout
                )
        except MessagingError:
            PUBLISH_FAILURES.labels(exchange).inc()
            raise
        self._published(exchange).inc()

    async def publish_many(self, exchange: str, messages: Sequence[tuple[str, CloudEvent]]) -> None:
        if not messages:
            return
        try:
            if exchange not in self._exchanges:
                await self.declare_exchange(exchange)
            with publish_span(self.system, exchange, len(messages)) as trace_headers:
                await self._send_all(exchange, messages, trace_headers)
        except MessagingError:
            PUBLISH_FAILURES.labels(exchange).inc()
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
        consumer = Consumer(self.system, queue, handler, self._seen if dedupe else None)
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

    async def send(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Basic.Properties,
        *,
        confirm_timeout: float | None,
    ) -> None:
        """Publishes one message and waits for its confirm, riding out a reconnection.

        The confirm is awaited at most `confirm_timeout` seconds; None leaves that to the caller.
        """
        connection, publisher = self._running()
        deadline: float | None = None
        while True:
            try:
                if not connection.connected.is_set():
                    raise ConnectionError("connection lost")
                channel = await publisher.get_underlay_channel()
                await channel.basic_publish(
                    body,
                    exchange=exchange,
                    routing_key=routing_key,
                    properties=properties,
                    timeout=confirm_timeout,
                )
                return
            except DeliveryError as exc:
                raise MessagingError(f"{self._where} refused a message for {exchange!r}") from exc
            except ChannelNotFoundEntity as exc:
                self._exchanges.discard(exchange)
                raise MessagingError(f"exchange {exchange!r} does not exist") from exc
            except TimeoutError as exc:
                raise MessagingError(
                    f"{self._where} did not confirm within {self.timeout}s"
                ) from exc
            except FAILURES as exc:
                loop = asyncio.get_running_loop()
                deadline = deadline or loop.time() + self.timeout
                await self._reconnected(publisher, deadline - loop.time(), exc)

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

    async def _send_all(
        self, exchange: str, messages: Sequence[tuple[str, CloudEvent]], trace: Mapping[str, str]
    ) -> None:
        """Writes the messages `messages_per_write` at a time, all in flight, then waits for the
        confirms; after a lost connection it sends the unconfirmed ones again (at least once).

        Fails if the broker confirms nothing for `timeout` seconds, nacks a message, or stays
        unreachable for `timeout` seconds.
        """
        pending = [
            Publish(
                key,
                encode_data(event),
                content_type=event.datacontenttype,
                headers=encode_headers(event, trace),
                message_id=event.id,
            )
            for key, event in messages
        ]
        deadline: float | None = None
        while pending:
            connection, publisher = self._running()
            try:
                if not connection.connected.is_set():
                    raise ConnectionError("connection lost")
                channel = await publisher.get_underlay_channel()
                futures: list[asyncio.Future[Any]] = []
                for start in range(0, len(pending), self.messages_per_write):
                    chunk = pending[start : start + self.messages_per_write]
                    futures += await write_batch(channel, exchange, chunk)
                failures = await self._settled(futures)
            except FAILURES as exc:
                failures = [exc] * len(pending)
            retry = [message for message, failure in zip(pending, failures, strict=True) if failure]
            if retry:
                failed = [failure for failure in failures if failure]
                for failure in failed:
                    self._raise_if_refused(exchange, failure)
                loop = asyncio.get_running_loop()
                deadline = deadline or loop.time() + self.timeout
                await self._reconnected(publisher, deadline - loop.time(), failed[0])
            pending = retry

    async def _settled(self, futures: list[asyncio.Future[Any]]) -> list[BaseException | None]:
        """Each confirm's failure (None when acked), once all are settled."""
        waiting: set[asyncio.Future[Any]] = set(futures)
        while waiting:
            done, waiting = await asyncio.wait(waiting, timeout=self.timeout)
            if not done:
                raise MessagingError(f"{self._where} confirmed nothing for {self.timeout}s")
        return [
            ConnectionError("publish cancelled") if future.cancelled() else future.exception()
            for future in futures
        ]

    def _raise_if_refused(self, exchange: str, failure: BaseException) -> None:
        """A nack or a missing exchange is final; anything else is worth another attempt."""
        if isinstance(failure, DeliveryError):
            raise MessagingError(f"{self._where} refused a message for {exchange!r}") from failure
        if isinstance(failure, ChannelNotFoundEntity):
            self._exchanges.discard(exchange)
            raise MessagingError(f"exchange {exchange!r} does not exist") from failure
        if not isinstance(failure, (*FAILURES, ChannelClosed, ChannelInvalidStateError)):
            raise failure

    async def _reconnected(
        self, publisher: AbstractRobustChannel, remaining: float, exc: BaseException
    ) -> None:
        try:
            async with asyncio.timeout(max(remaining, 0)):
                await asyncio.sleep(0.05)
                await publisher.ready()
        except TimeoutError:
            raise MessagingError(
                f"{self._where} unreachable for {self.timeout}s ({exc!r}); not published"
            ) from exc

    def _published(self, exchange: str) -> Counter:
        counter = self._published_counters.get(exchange)
        if counter is None:
            counter = self._published_counters[exchange] = PUBLISHED.labels(exchange)
        return counter

    def _running(self) -> tuple[AbstractRobustConnection, AbstractRobustChannel]:
        if self._connection is None or self._publisher is None:
            raise MessagingError("the RabbitMQ bus is not started, or already closed")
        return self._connection, self._publisher


def _properties(event: CloudEvent, trace_headers: Mapping[str, str]) -> Basic.Properties:
    return Basic.Properties(
        content_type=event.datacontenttype,
        headers=encode_headers(event, trace_headers),
        delivery_mode=PERSISTENT,
        message_id=event.id,
    )
