"""Ingest from the bus: queue `notifications.ingest`, shared by the replicas as competing
consumers.

- `outrigger.notifications`, bound with `#`: any backend publishes a message to a channel. The
  routing key is the channel, the CloudEvent `type` the event name, its JSON `data` the data and
  its `id` the de-duplication key (a redelivery or a publisher's retry lands once).
- `outrigger.events`, bound with `#` when `OUTRIGGER_NOTIFICATIONS_INGEST_EVENTS=true`: each event
  the event store relays goes to `streams.<stream id>` and `categories.<category>` in one step,
  with its global position, so a browser can follow a stream or a category.

A message is acknowledged only once it is in history (a crash before that delivers it again,
and the key keeps it from landing twice). While Redis is down it is retried with backoff; one
that can never land (a channel or event name out of the rules, data that is not JSON or is over
64 KiB) is dead-lettered at once with the reason (`notifications.ingest.dlq`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from outrigger.bus import Ack, Drop, Retry
from outrigger.errors import CacheError, InvalidInput, TooLarge
from services.notifications.domain import Draft

if TYPE_CHECKING:
    from outrigger.bus import Delivery, MessageBus, Outcome, Subscription
    from services.notifications.usecases import NotificationsService

QUEUE = "notifications.ingest"
NOTIFICATIONS_EXCHANGE = "outrigger.notifications"
EVENTS_EXCHANGE = "outrigger.events"
MAX_ATTEMPTS = 12


class MessageIngest:
    """The handler: a delivery becomes a publish to one channel, or to a stream's two."""

    def __init__(self, service: NotificationsService, *, events_exchange: str = EVENTS_EXCHANGE):
        self.service = service
        self.events_exchange = events_exchange

    async def __call__(self, delivery: Delivery) -> Outcome:
        try:
            await self.service.publish(self.draft_of(delivery), via="amqp")
        except (InvalidInput, TooLarge) as exc:
            return Drop(f"not a notification: {exc.detail}")
        except CacheError as exc:
            return Retry(f"history unavailable: {exc.detail}")
        return Ack()

    def draft_of(self, delivery: Delivery) -> Draft:
        """The message a delivery carries (the use case checks its values)."""
        if delivery.exchange == self.events_exchange:
            channels, name, data = event_message(delivery)
        else:
            channels, name, data = (delivery.routing_key,), delivery.event.type, _json(delivery)
        try:
            encoded = orjson.dumps(data, option=orjson.OPT_UTC_Z)
        except TypeError as exc:
            raise InvalidInput(f"its data cannot be written as JSON: {exc}") from None
        return Draft(channels, name, encoded, key=delivery.event.id)


def event_message(delivery: Delivery) -> tuple[tuple[str, ...], str, dict[str, Any]]:
    """The channels, event name and data of an event relayed by the event store."""
    event = delivery.event
    stream = event.subject
    if not stream:
        raise InvalidInput("an event from outrigger.events carries its stream id as subject")
    position = event.extensions.get("sequence")
    version = event.extensions.get("streamversion")
    data = {
        "stream_id": stream,
        "version": int(version) if version and version.isdigit() else None,
        "position": int(position) if position and position.isdigit() else None,
        "type": event.type,
        "data": _json(delivery),
        "time": event.time,
    }
    category = stream.split("-", 1)[0]
    channels = (f"streams.{stream}", f"categories.{category}")
    return tuple(dict.fromkeys(channels)), event.type, data


def _json(delivery: Delivery) -> Any:
    data = delivery.event.data
    if isinstance(data, bytes | bytearray | memoryview):
        raise InvalidInput(
            f"its data must be JSON, not {delivery.event.datacontenttype or 'bytes'}"
        )
    return data


async def subscribe_messages(
    bus: MessageBus,
    ingest: MessageIngest,
    *,
    events: bool,
    queue: str = QUEUE,
    exchange: str = NOTIFICATIONS_EXCHANGE,
    prefetch: int = 256,
) -> Subscription:
    """Consumes `queue`, bound to `exchange` (`#`) and, with `events`, to the events exchange."""
    bindings = [(exchange, "#")]
    if events:
        bindings.append((ingest.events_exchange, "#"))
    return await bus.subscribe(
        queue,
        bindings,
        ingest,
        max_attempts=MAX_ATTEMPTS,
        retry_delay_seconds=0.5,
        max_retry_delay_seconds=30.0,
        prefetch=prefetch,
        dedupe=False,  # history de-duplicates by key, across replicas
    )
