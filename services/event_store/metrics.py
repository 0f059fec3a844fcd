"""The event store's metrics (`outrigger_event_store_*`).

Counters move with each append (`MeasuredEventStore`). Gauges that need a query (head position,
sequencer delay, relay lag, oldest open transaction) are refreshed by `GaugeRefresher` every few
seconds in the background, never per scrape, so scrapes stay cheap and cannot load the database.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge

from outrigger.errors import Conflict, OutriggerError
from outrigger.tasks import Periodic
from services.event_store.domain import ANY

if TYPE_CHECKING:
    from collections.abc import Sequence

    from services.event_store.domain import AppendResult, EventData, EventStore, ExpectedVersion

APPENDS = Counter("outrigger_event_store_appends_total", "Appends that wrote events.")
EVENTS_APPENDED = Counter(
    "outrigger_event_store_events_appended_total", "Events written by appends."
)
CONFLICTS = Counter(
    "outrigger_event_store_conflicts_total",
    "Appends refused with 409: wrong expected version, or an event id reused for other content.",
)
REPLAYS = Counter(
    "outrigger_event_store_idempotent_replays_total",
    "Appends recognised as retries of an earlier append (nothing written).",
)
HEAD_POSITION = Gauge(
    "outrigger_event_store_head_position", "The highest position in the global log."
)
SEQUENCER_DELAY = Gauge(
    "outrigger_event_store_sequencer_delay_seconds",
    "Age of the oldest event not yet in the global log (0 when none waits).",
)
RELAY_LAG = Gauge(
    "outrigger_event_store_relay_lag_events",
    "Events in the global log the relay has not published yet (head - relay checkpoint).",
)
SUBSCRIBERS = Gauge(
    "outrigger_event_store_subscribers", "Server-Sent Events subscriptions open on this replica."
)
OLDEST_TRANSACTION = Gauge(
    "outrigger_event_store_oldest_transaction_age_seconds",
    "Age of the oldest open writing transaction in the database cluster (it holds the log back).",
)
UNREADABLE_FIELDS = Counter(
    "outrigger_event_store_unreadable_fields_total",
    "Sensitive fields served as unreadable: damaged ciphertext, or a key missing from the keyring.",
)
log = logging.getLogger("outrigger.event_store.metrics")


class MeasuredEventStore:
    """Counts appends, events, conflicts and replays; every other call goes straight through."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def append(
        self, stream_id: str, events: Sequence[EventData], expected_version: ExpectedVersion = ANY
    ) -> AppendResult:
        try:
            result = await self._store.append(stream_id, events, expected_version)
        except Conflict:
            CONFLICTS.inc()
            raise
        if result.replayed:
            REPLAYS.inc()
        else:
            APPENDS.inc()
            EVENTS_APPENDED.inc(len(events))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class GaugeRefresher:
    """Sets the query-backed gauges every `interval` seconds while started."""

    def __init__(self, store: EventStore, *, relay_checkpoint: str, interval: float) -> None:
        self._store = store
        self._relay_checkpoint = relay_checkpoint
        self._periodic = Periodic(self._refresh_or_warn, interval, name="event-store-gauges")

    async def refresh(self) -> None:
        """One refresh of every gauge (the background task calls it; tests may too)."""
        head = await self._store.head_position()
        relayed = await self._store.get_checkpoint(self._relay_checkpoint)
        HEAD_POSITION.set(head)
        RELAY_LAG.set(max(0, head - relayed))
        SEQUENCER_DELAY.set(await self._store.sequencer_delay() or 0.0)
        OLDEST_TRANSACTION.set(await self._store.oldest_transaction_age() or 0.0)

    async def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _refresh_or_warn(self) -> None:
        try:
            await self.refresh()
        except OutriggerError as exc:
            log.warning("cannot refresh the event store gauges: %s", exc.detail)
