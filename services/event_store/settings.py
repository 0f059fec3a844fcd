"""The event store's settings, on top of the kit's (`OUTRIGGER_EVENT_STORE_*`).

`OUTRIGGER_DATABASE_URL` picks the storage adapter: `postgresql+psycopg://…` for PostgreSQL (with
the elected sequencer), `sqlite+aiosqlite://…` for the embedded store. `OUTRIGGER_AMQP_URL` picks
the bus the relay publishes to (`amqp://…`, or `memory://` in one process).
"""

from __future__ import annotations

from pydantic import Field

from outrigger.settings import Settings

NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,200}$"


class EventStoreSettings(Settings):
    # the /v1 API; false for a process that only relays (and sequences), beside API processes
    # that run with event_store_relay_enabled false
    event_store_api_enabled: bool = True

    # the sequencer (PostgreSQL only): every replica runs one, the elected one sequences
    event_store_sequencer_enabled: bool = True
    event_store_sequencer_batch_size: int = Field(10_000, ge=1, le=1_000_000)
    event_store_sequencer_poll_interval_seconds: float = Field(0.005, gt=0, le=10)
    event_store_sequencer_election_interval_seconds: float = Field(1.0, gt=0, le=60)

    # the relay to RabbitMQ: every replica runs one, one per checkpoint name publishes
    event_store_relay_enabled: bool = True
    event_store_relay_exchange: str = Field("outrigger.events", pattern=NAME_PATTERN)
    event_store_relay_checkpoint: str = Field("relay", pattern=NAME_PATTERN)
    event_store_relay_batch_size: int = Field(1000, ge=1, le=10_000)
    event_store_relay_idle_wait_seconds: float = Field(1.0, gt=0, le=60)
    # after the log moves, wait this much longer so events go out in batches (latency for CPU)
    event_store_relay_linger_seconds: float = Field(0.02, ge=0, le=1)

    # Server-Sent Events subscriptions
    event_store_sse_heartbeat_seconds: float = Field(15.0, gt=0, le=300)
    event_store_sse_max_buffered_events: int = Field(1000, ge=1, le=1_000_000)
    # how long the log tail waits for a subscriber's full buffer to drain before dropping it
    event_store_sse_overflow_grace_seconds: float = Field(0.5, ge=0, le=30)
    event_store_sse_batch_size: int = Field(500, ge=1, le=10_000)
    event_store_sse_send_timeout_seconds: float = Field(30.0, gt=0)
    event_store_sse_idle_wait_seconds: float = Field(1.0, gt=0, le=60)

    # the gauges (head, lags, transaction age) are refreshed by a background task
    event_store_metrics_interval_seconds: float = Field(2.0, gt=0, le=300)

    # connections for the per-subject keys of crypto-shredding (PostgreSQL)
    event_store_subject_keys_pool_size: int = Field(4, ge=1, le=100)
