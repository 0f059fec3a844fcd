"""One RabbitMQ subscription: its channel and prefetch, the work queue, delay queues and DLQ.

Work queues and dead-letter queues are quorum queues, declared alike so a `<queue>.dlq` can be
subscribed to like any other. A message redelivered more than `DELIVERY_LIMIT` times (its
consumer keeps dying) is dead-lettered by the broker. Delay queue `<queue>.retry.<n>` holds the
copies of attempt n for its delay, then the broker moves them back to `<queue>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from aiormq import spec

from outrigger.bus.cloudevents import text_headers
from outrigger.bus.dispatch import dead_letter_headers, delivery_of, retry_headers
from outrigger.bus.port import DLX, Ack
from outrigger.bus.rabbitmq_acks import Acknowledgements, settle
from outrigger.bus.rabbitmq_publisher import Outgoing
from outrigger.bus.telemetry import DEAD_LETTERED
from outrigger.errors import MessagingError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel, AbstractRobustQueue

    from outrigger.bus.dispatch import Consumer, RetryPolicy
    from outrigger.bus.rabbitmq import RabbitMQBus

PERSISTENT = 2
DELIVERY_LIMIT = 20
log = logging.getLogger("outrigger.bus")


def work_queue_arguments(queue: str) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DLX,
        "x-dead-letter-routing-key": queue,
        "x-delivery-limit": DELIVERY_LIMIT,
    }


def delay_queue_arguments(queue: str, delay_seconds: float) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": max(1, round(delay_seconds * 1000)),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def delay_queue(queue: str, attempt: int) -> str:
    return f"{queue}.retry.{attempt}"


class RabbitMQSubscription:
    """Consumes one work queue on its own channel; acks only after the outcome is durable."""

    def __init__(self, bus: RabbitMQBus, consumer: Consumer, policy: RetryPolicy) -> None:
        self.queue = consumer.queue
        self._bus, self._consumer, self._policy = bus, consumer, policy
        self._channel: AbstractRobustChannel | None = None
        self._consuming: tuple[AbstractRobustQueue, str] | None = None
        self._in_progress: set[asyncio.Task[Any]] = set()
        self._acks = Acknowledgements()

    async def start(self, bindings: Sequence[tuple[str, str]], prefetch: int) -> None:
        self._channel = channel = await self._bus.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=prefetch)
        for attempt in range(1, self._policy.max_attempts):
            arguments = delay_queue_arguments(self.queue, self._policy.delay(attempt))
            name = delay_queue(self.queue, attempt)
            await channel.declare_queue(name, durable=True, arguments=arguments)
        dlq = f"{self.queue}.dlq"
        dead = await channel.declare_queue(dlq, durable=True, arguments=work_queue_arguments(dlq))
        await dead.bind(DLX, self.queue)
        queue = await channel.declare_queue(
            self.queue, durable=True, arguments=work_queue_arguments(self.queue)
        )
        for exchange, pattern in bindings:
            await queue.bind(exchange, pattern)
        self._consuming = (queue, await queue.consume(self._on_message))

    async def cancel(self) -> None:
        self._bus.forget(self)
        channel, self._channel = self._channel, None
        consuming, self._consuming = self._consuming, None
        if channel is None:
            return
        if consuming is not None and self._bus.connected:
            with contextlib.suppress(MessagingError):
                async with self._bus.deadline(f"cancelling the consumer of {self.queue!r}"):
                    await consuming[0].cancel(consuming[1])
        others = self._in_progress - {asyncio.current_task()}
        await asyncio.gather(*others, return_exceptions=True)
        await self._acks.flush()
        with contextlib.suppress(MessagingError):
            async with self._bus.deadline(f"closing the channel of {self.queue!r}"):
                await channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_progress.add(task)
        try:
            await self._process(message)
        except Exception:
            log.exception("a message of %s failed; the broker will deliver it again", self.queue)
            await settle(message.nack(requeue=True), message)
            self._acks.settled(message)
        finally:
            self._in_progress.discard(task)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        headers = text_headers(message.headers)
        exchange, routing_key = message.exchange or "", message.routing_key or ""
        try:
            delivery = delivery_of(
                self.queue,
                message.body,
                headers,
                message.content_type,
                message.message_id,
                exchange,
                routing_key,
                reply_to=message.reply_to,
                correlation_id=message.correlation_id,
            )
        except ValueError as exc:
            await self._dead_letter(
                message, headers, exchange, routing_key, 1, f"undecodable: {exc}"
            )
            return
        outcome = await self._consumer.handle(delivery)
        if isinstance(outcome, Ack):
            self._acks.finished(message)  # acknowledged with its neighbours, at the turn's end
        elif self._policy.retries(outcome, delivery.attempt):
            copy = retry_headers(
                headers, delivery.exchange, delivery.routing_key, delivery.attempt + 1
            )
            await self._forward(message, "", delay_queue(self.queue, delivery.attempt), copy)
        else:
            await self._dead_letter(
                message,
                headers,
                delivery.exchange,
                delivery.routing_key,
                delivery.attempt,
                outcome.reason,
            )

    async def _dead_letter(
        self,
        message: AbstractIncomingMessage,
        headers: Mapping[str, Any],
        exchange: str,
        routing_key: str,
        attempt: int,
        reason: str,
    ) -> None:
        copy = dead_letter_headers(headers, exchange, routing_key, attempt, reason)
        if await self._forward(message, DLX, self.queue, copy):
            DEAD_LETTERED.labels(self.queue).inc()

    async def _forward(
        self,
        message: AbstractIncomingMessage,
        exchange: str,
        routing_key: str,
        headers: dict[str, Any],
    ) -> bool:
        """Publishes a copy and waits for its confirm, then acks the original; else requeues it."""
        properties = spec.Basic.Properties(
            content_type=message.content_type,
            headers=headers,
            delivery_mode=PERSISTENT,
            message_id=message.message_id,
            reply_to=message.reply_to,
            correlation_id=message.correlation_id,
        )
        try:
            await self._bus.forward(exchange, Outgoing(routing_key, message.body, properties))
        except MessagingError as exc:
            log.warning("could not move a message of %s to %r: %s", self.queue, routing_key, exc)
            await asyncio.sleep(self._policy.delay_seconds)
            await settle(message.nack(requeue=True), message)
            self._acks.settled(message)
            return False
        await settle(message.ack(), message)
        self._acks.settled(message)
        return True
