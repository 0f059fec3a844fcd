"""Invalidation from events: a change to stream S removes the entries tagged `stream:S`.

Queue `cache.invalidations` is bound to `outrigger.events` with `#`, so every event the event
store relays arrives here; its `subject` is the stream id. The tag is invalidated in every
namespace, each one atomically, and the message is acknowledged only after that, so a crash in
between delivers it again. Invalidating twice removes nothing more: the handler is idempotent.

While the store is down the event is retried with backoff (0.5 s doubling to 30 s, for about
three minutes), then dead-lettered to `cache.invalidations.dlq` for an operator to re-drive.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from outrigger.bus import Ack, Retry
from outrigger.errors import CacheError, InvalidInput
from services.cache import metrics
from services.cache.domain import check_tags

if TYPE_CHECKING:
    from outrigger.audit_trail import AuditTrail
    from outrigger.bus import Delivery, MessageBus, Outcome, Subscription
    from services.cache.domain import CacheStore

SERVICE = "cache"  # the actor of the audit records of invalidations no caller asked for
QUEUE = "cache.invalidations"
EVENTS_EXCHANGE = "outrigger.events"
MAX_ATTEMPTS = 12


def stream_tag(stream_id: str) -> str:
    """The tag a client puts on entries built from stream `stream_id`."""
    return f"stream:{stream_id}"


class StreamInvalidation:
    """The handler: invalidates `stream:<subject>` everywhere, then acknowledges."""

    def __init__(self, store: CacheStore, audit: AuditTrail) -> None:
        self.store = store
        self.audit = audit

    async def __call__(self, delivery: Delivery) -> Outcome:
        event = delivery.event
        if not event.subject:
            return Ack()  # not about a stream: nothing can be tagged with it
        tag = stream_tag(event.subject)
        try:
            check_tags([tag])
        except InvalidInput:
            return Ack()  # no entry can carry a tag this long or with these characters
        try:
            removed = await self.store.invalidate_tags(None, [tag])
        except CacheError as exc:
            return Retry(f"cache unavailable while invalidating {tag!r}: {exc.detail}")
        lag = (datetime.now(UTC) - event.time).total_seconds()
        metrics.INVALIDATION_LAG.observe(max(lag, 0.0))
        metrics.INVALIDATIONS.labels("event").inc()
        metrics.INVALIDATED_ENTRIES.labels("event").inc(removed)
        if removed:
            await self.audit.record(
                "invalidate",
                actor=SERVICE,
                target=tag,
                details={
                    "removed": removed,
                    "tags": [tag],
                    "event_id": event.id,
                    "event_type": event.type,
                    "event_source": event.source,
                },
            )
        return Ack()


async def subscribe_invalidations(
    bus: MessageBus, store: CacheStore, audit: AuditTrail, *, queue: str = QUEUE
) -> Subscription:
    """Consumes `queue` (bound to `outrigger.events`, `#`) with `StreamInvalidation`."""
    return await bus.subscribe(
        queue,
        [(EVENTS_EXCHANGE, "#")],
        StreamInvalidation(store, audit),
        max_attempts=MAX_ATTEMPTS,
        retry_delay_seconds=0.5,
        max_retry_delay_seconds=30.0,
    )
