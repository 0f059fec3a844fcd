"""The relay: publishes every event of the global log, in order, to RabbitMQ.

Each event becomes a CloudEvent on exchange `outrigger.events` with routing key
`<category>.<type>`: `id` = the event id, `subject` = the stream id, `time` = when it was
appended, extensions `sequence` (its global position) and `streamversion`. Batches go out with
publisher confirms (`publish_many`), and the relay's checkpoint is stored only after the broker
confirmed the whole batch: delivery is at least once, and after a crash or a restart the relay
publishes again from its checkpoint, so consumers may see an event twice (same id) but never
miss one. Data is published as stored: crypto-shredded fields stay ciphertext.

Every replica runs a relay; the kit's election (`outrigger.leadership`) picks one per checkpoint
name. When the leader's lock connection drops, another replica takes over from the stored
checkpoint. The embedded store has one process, which always leads.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from outrigger.bus import CloudEvent
from outrigger.leadership import Elected
from outrigger.tasks import Periodic
from services.event_store.domain import category
from services.event_store.metrics import RELAYED

if TYPE_CHECKING:
    from outrigger.bus import MessageBus
    from outrigger.leadership import Leadership
    from services.event_store.domain import EventStore, RecordedEvent

MAX_ROUTING_KEY_BYTES = 255
log = logging.getLogger("outrigger.event_store.relay")


def election(checkpoint: str) -> str:
    """The name of the relay election for a checkpoint: one leader per checkpoint."""
    return f"event_store.relay.{checkpoint}"


def routing_key(event: RecordedEvent) -> str:
    """`<category>.<type>`, cut to AMQP's 255 bytes (on a character boundary)."""
    key = f"{category(event.stream_id)}.{event.type}".encode()
    return key[:MAX_ROUTING_KEY_BYTES].decode(errors="ignore")


def cloud_event(event: RecordedEvent, source: str) -> CloudEvent:
    """The event as published: the CloudEvents distributed-tracing extension (`traceparent`,
    `tracestate`) carries the trace of the append, which the publish and its consumers continue."""
    extensions = {"sequence": str(event.global_position), "streamversion": str(event.version)}
    if event.trace:
        extensions.update(event.trace)
    return CloudEvent(
        id=str(event.id),
        source=source,
        type=event.type,
        data=event.data,
        subject=event.stream_id,
        time=event.created,
        extensions=extensions,
    )


class Relay(Elected):
    """`start()` in the lifespan, `stop()` at shutdown (at once: a batch cut short is published
    again by the next leader). `position` is the last confirmed one.

    Caught up, it waits for the log to move (at most `idle_wait`), then `linger` seconds more so
    a busy log goes out in batches rather than a few events at a time."""

    def __init__(
        self,
        store: EventStore,
        bus: MessageBus,
        leadership: Leadership,
        *,
        exchange: str = "outrigger.events",
        checkpoint: str = "relay",
        batch_size: int = 1000,
        idle_wait: float = 1.0,
        linger: float = 0.0,
        election_interval: float = 1.0,
    ) -> None:
        self.position = 0
        self._store = store
        self._bus = bus
        self._exchange = exchange
        self._checkpoint = checkpoint
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._linger = linger
        relaying = Periodic(self._next, idle_wait, name="event-store-relaying")
        super().__init__(
            leadership,
            relaying,
            interval=election_interval,
            name="event-store-relay",
            prepare=self._resume,
        )

    async def publish_batch(self) -> int:
        """Publishes the next batch after the checkpoint, then moves the checkpoint past it.

        Returns how many events went out (0 when the relay is caught up).
        """
        events = await self._store.read_log(self.position, self._batch_size)
        if not events:
            return 0
        source = self._bus.source
        await self._bus.publish_many(
            self._exchange, [(routing_key(event), cloud_event(event, source)) for event in events]
        )
        last = events[-1].global_position
        assert last is not None, "log reads carry positions"
        await self._store.set_checkpoint(self._checkpoint, last)
        self.position = last
        RELAYED.inc(len(events))
        return len(events)

    async def _resume(self) -> None:
        """At the start of each term: on from the stored checkpoint (another replica may have
        moved it)."""
        self.position = await self._store.get_checkpoint(self._checkpoint)
        log.info("relaying the event log from position %d", self.position)

    async def _next(self) -> bool:
        """One batch; when it was not full, waits for the log to move (and lingers)."""
        if await self.publish_batch() < self._batch_size:
            await self._store.wait_for_log(self.position, max_wait=self._idle_wait)
            if self._linger:  # let more events gather: one batch costs far less than many
                await asyncio.sleep(self._linger)
        return True
