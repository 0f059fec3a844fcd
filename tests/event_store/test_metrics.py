"""The event store's metrics, as `/metrics` shows them, on the embedded and the PostgreSQL backend.

Counters are process-wide, so each test compares before and after.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from services.event_store.adapters.postgres import PostgresEventStore
from services.event_store.usecases import LogGauges
from tests.event_store.api_support import (
    Api,
    append,
    event,
)
from tests.event_store.conftest import settle
from tests.event_store.suite import new_stream

if TYPE_CHECKING:
    pass

COUNTERS = (
    "outrigger_event_store_appends_total",
    "outrigger_event_store_events_appended_total",
    "outrigger_event_store_conflicts_total",
    "outrigger_event_store_idempotent_replays_total",
)


async def scrape(api: Api) -> dict[str, float]:
    """Every sample of `/metrics` by name (label-less samples: the event store's own)."""
    response = await api.http.get("/metrics")
    assert response.status_code == 200
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if not sample.labels
    }


async def test_appends_events_conflicts_and_replays_are_counted(api: Api) -> None:
    before = await scrape(api)
    stream, retried = new_stream(), str(uuid.uuid4())
    assert (await append(api, stream, event(1), event(2), expected="no_stream")).status_code == 201
    assert (await append(api, stream, event(3), expected=0)).status_code == 409
    assert (await append(api, stream, event(4, id=retried))).status_code == 201
    assert (await append(api, stream, event(4, id=retried))).status_code == 200
    after = await scrape(api)
    grown = {name: after[name] - before.get(name, 0.0) for name in COUNTERS}
    assert grown == {
        "outrigger_event_store_appends_total": 2,
        "outrigger_event_store_events_appended_total": 3,
        "outrigger_event_store_conflicts_total": 1,
        "outrigger_event_store_idempotent_replays_total": 1,
    }


async def test_the_gauges_show_the_head_and_the_relay_lag(api: Api) -> None:
    stream = new_stream()
    assert (await append(api, stream, event(1), event(2), event(3))).status_code == 201
    store = api.app.state.event_store.store
    await settle(store)  # PostgreSQL: the sequencer may still be filling the log
    head = await store.head_position()
    sequenced = store if isinstance(store, PostgresEventStore) else None
    refresher = LogGauges(store, sequenced, relay_checkpoint=f"never-{new_stream()}", interval=60)
    await refresher.refresh()
    gauges = await scrape(api)
    assert gauges["outrigger_event_store_head_position"] == head
    assert gauges["outrigger_event_store_relay_lag_events"] == head  # that relay never ran
    assert gauges["outrigger_event_store_sequencer_delay_seconds"] >= 0
    assert gauges["outrigger_event_store_oldest_transaction_age_seconds"] >= 0
    assert REGISTRY.get_sample_value("outrigger_event_store_subscribers") is not None
