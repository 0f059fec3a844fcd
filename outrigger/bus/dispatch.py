"""What happens to a delivered message, the same on every adapter.

An adapter turns a message into a `Delivery` (`delivery_of`), asks a `Consumer` for the outcome,
then acks, sends a copy to the delay queue of its attempt, or dead-letters it, as `RetryPolicy`
says. Copies carry `retry_headers` / `dead_letter_headers`. `MemorySeenIds` is the default memory
of handled ids the consumer de-duplicates with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context, trace
from opentelemetry.trace import Status, StatusCode

from outrigger.bus.cloudevents import decode
from outrigger.bus.port import ATTEMPT_HEADER, DEATH_REASON_HEADER, Ack, Delivery, Drop, Retry
from outrigger.bus.telemetry import CONSUMED, DUPLICATES, HANDLER_SECONDS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from outrigger.bus.port import Handler, Outcome, SeenIds
    from outrigger.bus.telemetry import BusTracing

EXCHANGE_HEADER = "x-outrigger-exchange"
ROUTING_KEY_HEADER = "x-outrigger-routing-key"
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")
log = logging.getLogger("outrigger.bus")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempt n that asks to retry waits `min(delay * 2**(n-1), max_delay)` seconds."""

    max_attempts: int = 5
    delay_seconds: float = 1.0
    max_delay_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if not 0 < self.delay_seconds <= self.max_delay_seconds:
            raise ValueError(
                f"retry delay must be > 0 and <= its maximum, not {self.delay_seconds} "
                f"(maximum {self.max_delay_seconds})"
            )

    def delay(self, attempt: int) -> float:
        return float(min(self.delay_seconds * 2 ** (attempt - 1), self.max_delay_seconds))

    def retries(self, outcome: Outcome, attempt: int) -> bool:
        """True if `outcome` of `attempt` goes to a delay queue; else it is acked or dead."""
        return isinstance(outcome, Retry) and attempt < self.max_attempts


def delivery_of(
    queue: str,
    body: bytes,
    headers: Mapping[str, Any],
    content_type: str | None,
    message_id: str | None,
    exchange: str,
    routing_key: str,
    *,
    reply_to: str | None = None,
    correlation_id: str | None = None,
) -> Delivery:
    """The delivery a handler sees; raises ValueError if the message is not a CloudEvent."""
    return Delivery(
        event=decode(body, headers, content_type, message_id),
        queue=queue,
        exchange=headers.get(EXCHANGE_HEADER, exchange),
        routing_key=headers.get(ROUTING_KEY_HEADER, routing_key),
        attempt=int(headers.get(ATTEMPT_HEADER, 1)),
        headers=headers,
        reply_to=reply_to or None,
        correlation_id=correlation_id or None,
    )


def reply_address(delivery: Delivery) -> tuple[str, str]:
    """The queue a reply to `delivery` goes to and the correlation id it carries (the
    request's, else its event id); ValueError if the request names no `reply_to`."""
    if not delivery.reply_to:
        raise ValueError(f"event {delivery.event.id} names no reply_to queue to answer to")
    return delivery.reply_to, delivery.correlation_id or delivery.event.id


def retry_headers(
    headers: Mapping[str, Any], exchange: str, routing_key: str, attempt: int
) -> dict[str, Any]:
    """Headers of the copy that becomes `attempt`, remembering where the event was published."""
    copy = {k: v for k, v in headers.items() if not k.startswith(_BROKER_HEADERS)}
    copy[ATTEMPT_HEADER] = attempt
    copy[EXCHANGE_HEADER] = exchange
    copy[ROUTING_KEY_HEADER] = routing_key
    return copy


def dead_letter_headers(
    headers: Mapping[str, Any], exchange: str, routing_key: str, attempt: int, reason: str
) -> dict[str, Any]:
    copy = retry_headers(headers, exchange, routing_key, attempt)
    copy[DEATH_REASON_HEADER] = reason
    return copy


class MemorySeenIds:
    """Remembers the last `capacity` ids handled, per process; least recently seen go first.

    Catches the duplicates one process sees (a redelivery after a lost ack, a publisher retry).
    Replicas that compete for a queue each keep their own memory.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._ids: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def seen(self, queue: str, message_id: str) -> bool:
        key = (queue, message_id)
        if key in self._ids:
            self._ids.move_to_end(key)
            return True
        return False

    async def remember(self, queue: str, message_id: str) -> None:
        key = (queue, message_id)
        self._ids[key] = None
        self._ids.move_to_end(key)
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


class Consumer:
    """Runs one queue's handler: de-duplication, a `process` span, metrics. Never raises."""

    def __init__(
        self, tracing: BusTracing, queue: str, handler: Handler, seen: SeenIds | None
    ) -> None:
        self.tracing = tracing
        self.queue = queue
        self.handler = handler
        self.seen = seen
        self._in_progress: dict[str, asyncio.Event] = {}
        self._duration = HANDLER_SECONDS.labels(queue)
        self._consumed = {
            kind: CONSUMED.labels(queue, kind.__name__.lower()) for kind in (Ack, Retry, Drop)
        }
        self._duplicates = DUPLICATES.labels(queue)
        self._consumed_duplicate = CONSUMED.labels(queue, "duplicate")

    async def handle(self, delivery: Delivery) -> Outcome:
        """The outcome of `delivery`: `Ack()` without calling the handler for a duplicate."""
        if self.seen is None:
            return await self._run(delivery)
        message_id = delivery.event.id
        while (other := self._in_progress.get(message_id)) is not None:
            await other.wait()
        if await self.seen.seen(self.queue, message_id):
            self._duplicates.inc()
            self._consumed_duplicate.inc()
            return Ack()
        done = self._in_progress[message_id] = asyncio.Event()
        try:
            outcome = await self._run(delivery)
            if not isinstance(outcome, Retry):
                await self.seen.remember(self.queue, message_id)
            return outcome
        finally:
            del self._in_progress[message_id]
            done.set()

    async def _run(self, delivery: Delivery) -> Outcome:
        started = time.perf_counter()
        span = self.tracing.processing(delivery)
        current = context.attach(trace.set_span_in_context(span))
        try:
            error_type: str | None = None
            try:
                outcome = await self.handler(delivery)
            except Exception as exc:
                log.warning(
                    "handler of %s failed on event %s (attempt %d)",
                    self.queue,
                    delivery.event.id,
                    delivery.attempt,
                    exc_info=True,
                )
                span.record_exception(exc)
                error_type = type(exc).__name__
                outcome = Retry(f"{error_type}: {exc}")
            if not isinstance(outcome, Ack | Retry | Drop):
                outcome = Retry(f"handler returned {outcome!r}, not Ack, Retry or Drop")
            if not isinstance(outcome, Ack):
                span.set_status(Status(StatusCode.ERROR, outcome.reason))
                span.set_attribute("error.type", error_type or type(outcome).__name__.lower())
        finally:
            context.detach(current)
            span.end()
        self._duration.observe(time.perf_counter() - started)
        counted = self._consumed.get(type(outcome))
        if counted is None:  # a subclass of an outcome
            counted = CONSUMED.labels(self.queue, type(outcome).__name__.lower())
        counted.inc()
        return outcome
