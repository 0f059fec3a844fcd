"""The event store's metrics (`outrigger_event_store_*`), defined here and counted in the
use-case room (`usecases/`).

Gauges that need a query (head position, sequencer delay, relay lag, oldest open transaction) are
refreshed by `usecases.gauges.LogGauges` every few seconds, never per scrape, so scrapes stay
cheap and cannot load the database. Leadership is the kit's `outrigger_leader{election}`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
RELAYED = Counter(
    "outrigger_event_store_relayed_events_total", "Events published to the bus and confirmed."
)
SEQUENCED = Counter(
    "outrigger_event_store_sequenced_events_total", "Events moved into the global log here."
)
