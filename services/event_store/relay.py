"""The relay: publishes every event of the global log, in order, to RabbitMQ.

Each event becomes a CloudEvent on exchange `outrigger.events` with routing key
`<category>.<type>`: `id` = the event id, `subject` = the stream id, `time` = when it was
appended, extensions `sequence` (its global position) and `streamversion`. Batches go out with
publisher confirms (`publish_many`), and the relay's checkpoint is stored only after the broker
confirmed the whole batch: delivery is at least once, and after a crash or a restart the relay
publishes again from its checkpoint, so consumers may see an event twice (same id) but never
miss one. Data is published as stored: crypto-shredded fields stay ciphertext.

Every replica runs a relay; one leads per checkpoint name. On PostgreSQL the leader holds
`pg_try_advisory_lock` on a dedicated connection (the same scheme as the sequencer, another key);
when that connection drops, PostgreSQL releases the lock and another replica takes over from the
stored checkpoint. On SQLite there is one process, which always leads.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

import psycopg
from prometheus_client import Counter, Gauge

from outrigger.bus import CloudEvent
from outrigger.errors import OutriggerError
from outrigger.tasks import stop_task
from services.event_store.adapters.postgres_connection import connect
from services.event_store.domain import category

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from outrigger.bus import MessageBus
    from services.event_store.domain import EventStore, RecordedEvent

# Two int4 keys: 1702261619 is the sequencer's; the relay's second key is its checkpoint's hash.
RELAY_LOCK = "SELECT pg_try_advisory_lock(1702261620, hashtext(%s))"
MAX_ROUTING_KEY_BYTES = 255

RELAYED = Counter(
    "outrigger_event_store_relayed_events_total", "Events published to the bus and confirmed."
)
RELAY_LEADER = Gauge("outrigger_event_store_relay_leader", "1 while this process relays.")
log = logging.getLogger("outrigger.event_store.relay")


class Leadership(Protocol):
    async def lead(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Waits until this process leads, then runs `work` while it does.

        `work` is cancelled when leadership is lost (and this raises); it returns when `work`
        returns or raises.
        """
        ...


class SoleLeadership:
    """One process (the embedded store): it always leads."""

    async def lead(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        await work()


class PostgresLeadership:
    """Leads while holding an advisory lock on a dedicated connection, checked every `interval`."""

    def __init__(self, url: str, name: str, *, interval: float = 1.0) -> None:
        self._url = url
        self._name = name
        self._interval = interval

    async def lead(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            async with await connect(self._url, "outrigger-event-store-relay") as connection:
                while True:
                    if await self._locked(connection):
                        break
                    await asyncio.sleep(self._interval)
                working = asyncio.create_task(work())
                watching = asyncio.create_task(self._watch(connection))
                try:
                    await asyncio.wait([working, watching], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    working.cancel()
                    watching.cancel()
                    await asyncio.gather(working, watching, return_exceptions=True)
                for task in (working, watching):
                    if task.done() and not task.cancelled():
                        task.result()  # the first failure, if any
        except (psycopg.Error, OSError) as exc:
            raise LeadershipLost(f"relay leadership lost or not reachable: {exc}") from exc

    async def _locked(self, connection: psycopg.AsyncConnection[Any]) -> bool:
        cursor = await connection.execute(RELAY_LOCK, (self._name,))
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def _watch(self, connection: psycopg.AsyncConnection[Any]) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await connection.execute("SELECT 1")


class LeadershipLost(OutriggerError):
    """The lock connection failed: another replica may relay now."""


def routing_key(event: RecordedEvent) -> str:
    """`<category>.<type>`, cut to AMQP's 255 bytes (on a character boundary)."""
    key = f"{category(event.stream_id)}.{event.type}".encode()
    return key[:MAX_ROUTING_KEY_BYTES].decode(errors="ignore")


def cloud_event(event: RecordedEvent, source: str) -> CloudEvent:
    return CloudEvent(
        id=str(event.id),
        source=source,
        type=event.type,
        data=event.data,
        subject=event.stream_id,
        time=event.created,
        extensions={"sequence": str(event.global_position), "streamversion": str(event.version)},
    )


class Relay:
    """`start()` in the lifespan, `stop()` at shutdown. `position` is the last confirmed one.

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
        retry_seconds: float = 1.0,
    ) -> None:
        self.position = 0
        self._store = store
        self._bus = bus
        self._leadership = leadership
        self._exchange = exchange
        self._checkpoint = checkpoint
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._linger = linger
        self._retry = retry_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-store-relay")

    async def stop(self) -> None:
        """Cancels the relay and waits until it has stopped (see `stop_task`)."""
        task, self._task = self._task, None
        await stop_task(task)

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

    async def _run(self) -> None:
        while True:
            try:
                await self._leadership.lead(self._relay)
            except OutriggerError as exc:
                log.warning("relay stopped (%s); retrying in %g s", exc.detail, self._retry)
            except Exception:
                log.exception("relay failed; retrying in %g s", self._retry)
            finally:
                RELAY_LEADER.set(0)
            await asyncio.sleep(self._retry)

    async def _relay(self) -> None:
        RELAY_LEADER.set(1)
        self.position = await self._store.get_checkpoint(self._checkpoint)
        log.info("relaying the event log from position %d", self.position)
        while True:
            if await self.publish_batch() < self._batch_size:
                await self._store.wait_for_log(self.position, max_wait=self._idle_wait)
                if self._linger:  # let more events gather: one batch costs far less than many
                    await asyncio.sleep(self._linger)
