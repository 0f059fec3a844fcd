"""Invalidation from events: a change to stream S removes the entries tagged `stream:S`.

Queue `cache.invalidations` is bound to `outrigger.events` with `#`, so every event the event
store relays arrives here; its `subject` is the stream id. The tag is invalidated in every
namespace, each one atomically (`CacheService.invalidate_stream`), and the message is
acknowledged only after that, so a crash in between delivers it again. Invalidating twice
removes nothing more: the handler is idempotent.

While the store is down the event is retried with backoff (0.5 s doubling to 30 s, for about
three minutes), then dead-lettered to `cache.invalidations.dlq` for an operator to re-drive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from outrigger.bus import Ack, Retry
from outrigger.errors import CacheError
from services.cache.service import stream_tag

if TYPE_CHECKING:
    from outrigger.bus import Delivery, MessageBus, Outcome, Subscription
    from services.cache.service import CacheService

QUEUE = "cache.invalidations"
EVENTS_EXCHANGE = "outrigger.events"
MAX_ATTEMPTS = 12


class StreamInvalidation:
    """The handler: invalidates `stream:<subject>` everywhere, then acknowledges."""

    def __init__(self, cache: CacheService) -> None:
        self.cache = cache

    async def __call__(self, delivery: Delivery) -> Outcome:
        event = delivery.event
        try:
            await self.cache.invalidate_stream(event)
        except CacheError as exc:
            tag = stream_tag(event.subject or "")
            return Retry(f"cache unavailable while invalidating {tag!r}: {exc.detail}")
        return Ack()


async def subscribe_invalidations(
    bus: MessageBus, cache: CacheService, *, queue: str = QUEUE
) -> Subscription:
    """Consumes `queue` (bound to `outrigger.events`, `#`) with `StreamInvalidation`."""
    return await bus.subscribe(
        queue,
        [(EVENTS_EXCHANGE, "#")],
        StreamInvalidation(cache),
        max_attempts=MAX_ATTEMPTS,
        retry_delay_seconds=0.5,
        max_retry_delay_seconds=30.0,
    )
