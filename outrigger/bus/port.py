"""The message bus port: CloudEvents published to topic exchanges, consumed from work queues.

Delivery is at least once. A handler answers `Ack()`, `Retry(reason)` or `Drop(reason)`; one that
raises counts as `Retry` with the exception as reason. Retries wait in a delay queue, the delay
doubling each attempt; after the last attempt, or on `Drop`, the message goes to `<queue>.dlq`
with the reason in the `x-outrigger-death-reason` header.

Request and reply: a requester publishes with `reply_to` (the queue answers go to) and a
`correlation_id`, AMQP's own message properties; the handler that serves it answers with
`bus.reply(delivery, event)`, which publishes to that queue through the default exchange with the
request's correlation id (its event id when the requester gave none), confirmed like any publish.

Tracing: a publish continues the trace current when it is called, and the handler of each
delivery runs in a span that continues the publisher's trace. An event may name its own parent
context instead, with the CloudEvents Distributed Tracing extension: `extensions={"traceparent":
…, "tracestate": …}` (W3C Trace Context values; `tracestate` optional). The event store's relay
does so with the context stored beside each event, so one trace runs from the request that
appended the event through the broker into every consumer.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

SPECVERSION = "1.0"
JSON = "application/json"
DEATH_REASON_HEADER = "x-outrigger-death-reason"
ATTEMPT_HEADER = "x-outrigger-attempt"
DLX = "outrigger.dlx"

_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
_RESERVED = frozenset(
    {"id", "source", "type", "data", "subject", "time", "specversion", "datacontenttype"}
)


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A CloudEvents 1.0 event. `data` is bytes, or any JSON-able value when the type is JSON."""

    id: str
    source: str
    type: str
    data: Any = None
    subject: str | None = None
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = JSON
    extensions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError(f"event {self.id}: time must be timezone-aware (UTC), not naive")
        for name in self.extensions:
            if name in _RESERVED or not _EXTENSION_NAME.fullmatch(name):
                raise ValueError(
                    f"CloudEvents extension name {name!r} must be 1-20 lowercase letters or "
                    "digits and not a core attribute"
                )

    @classmethod
    def new(
        cls,
        *,
        source: str,
        type: str,
        data: Any = None,
        subject: str | None = None,
        datacontenttype: str = JSON,
        extensions: Mapping[str, str] | None = None,
    ) -> CloudEvent:
        """An event with a fresh UUID id, stamped now (UTC)."""
        return cls(
            id=str(uuid.uuid4()),
            source=source,
            type=type,
            data=data,
            subject=subject,
            time=datetime.now(UTC),
            datacontenttype=datacontenttype,
            extensions=dict(extensions or {}),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event as a handler receives it.

    `exchange` and `routing_key` are the ones the event was first published with, also on retries
    and in the dead-letter queue. `attempt` counts from 1. `headers` are the transport headers.
    `reply_to` and `correlation_id` are the message's properties of those names, as the
    requester set them (kept on retries and in the dead-letter queue); see `MessageBus.reply`.
    """

    event: CloudEvent
    queue: str
    exchange: str
    routing_key: str
    attempt: int
    headers: Mapping[str, Any]
    reply_to: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """The work is done (and durable): remove the message."""


@dataclass(frozen=True, slots=True)
class Retry:
    """The work failed for now: deliver again after the backoff delay."""

    reason: str


@dataclass(frozen=True, slots=True)
class Drop:
    """The message can never succeed: dead-letter it now, with the reason."""

    reason: str


Outcome: TypeAlias = Ack | Retry | Drop
Handler: TypeAlias = Callable[[Delivery], Awaitable[Outcome]]


class Subscription(Protocol):
    queue: str

    async def cancel(self) -> None:
        """Stops new deliveries, waits for the handlers in progress, then returns.

        Unacknowledged messages stay in the queue for the next consumer.
        """
        ...


class SeenIds(Protocol):
    """The ids of messages a queue's handler already finished, for consumer-side de-duplication."""

    async def seen(self, queue: str, message_id: str) -> bool:
        """True if `message_id` was remembered for `queue` (and not yet forgotten)."""
        ...

    async def remember(self, queue: str, message_id: str) -> None:
        """Records `message_id` for `queue`; a bounded store forgets the least recently seen."""
        ...


class MessageBus(Protocol):
    source: str
    """The CloudEvents `source` of this process, for `CloudEvent.new(source=bus.source, …)`."""

    async def start(self) -> None:
        """Connects. Raises MessagingError if the broker cannot be reached."""
        ...

    async def close(self) -> None:
        """Cancels every subscription (waiting for handlers in progress), then disconnects.

        Idempotent.
        """
        ...

    async def check(self) -> None:
        """Returns if the bus can publish and consume now; raises MessagingError saying why not."""
        ...

    async def declare_exchange(self, name: str) -> None:
        """Declares a durable topic exchange. Idempotent; `publish` and `subscribe` call it."""
        ...

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        event: CloudEvent,
        *,
        reply_to: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Publishes one persistent event, returning only once the broker has confirmed it.

        `reply_to` names the queue a handler's `reply` goes to, `correlation_id` what the reply
        carries back (both AMQP message properties; None leaves them out).

        Declares the exchange if needed. A message no queue is bound for is dropped, as AMQP
        does. While the broker is unreachable, waits a bounded time for the reconnection, then
        raises MessagingError; the event may then have been delivered or not (at least once).
        The message carries the current trace context, or the event's own `traceparent`
        extension's (see the module's docstring).
        """
        ...

    async def reply(self, delivery: Delivery, event: CloudEvent) -> None:
        """Answers a request: publishes `event` to the queue `delivery.reply_to` names, through
        the default exchange (never declared), with the request's `correlation_id`, or its
        event id when it had none. Confirmed as `publish` is, with its errors; a reply to a
        queue that no longer exists is dropped, as AMQP does. Raises ValueError if the
        delivery names no `reply_to`.
        """
        ...

    async def publish_many(self, exchange: str, messages: Sequence[tuple[str, CloudEvent]]) -> None:
        """Publishes `(routing_key, event)` pairs, returning once the broker confirmed them all.

        The pairs are sent in order on one channel, many confirmations in flight. Raises
        MessagingError if the broker refuses any one, in which case some of the others may have
        been delivered. A connection lost meanwhile is waited for (a bounded time, then
        MessagingError) and what it left unconfirmed is sent again: a message may arrive twice.
        Each message carries the trace context current at the call, unless its event names its
        own parent with the `traceparent` extension, which it then continues (see the module's
        docstring).
        """
        ...

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
    ) -> Subscription:
        """Consumes `queue`, bound to each `(exchange, pattern)` (topic: `*` one word, `#` any).

        Declares the durable work queue, its delay queues and its dead-letter queue
        `<queue>.dlq` if needed; several subscriptions to one queue compete for its messages.
        At most `prefetch` (default: the bus's) handlers run at once. A message is acknowledged
        only after its handler returned. Attempt n that asks to retry is delivered again after
        `retry_delay_seconds * 2**(n-1)` seconds (at most `max_retry_delay_seconds`); attempt
        `max_attempts` is dead-lettered instead. With `dedupe`, a message whose id the handler
        already acked or dropped on this queue is acknowledged without calling it again.
        Raises MessagingError if the broker cannot be reached.
        """
        ...
