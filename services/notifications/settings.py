"""The notifications hub's settings: history bounds, the streams' heartbeat, send timeout and
queue, the slow-consumer policy, and the background loops' intervals.

`OUTRIGGER_REDIS_URL` (from the kit) picks the history: `memory://` for the embedded one (one
process), `redis://`, `rediss://` or `unix://` for Redis, which every replica shares. A hub holds
many more connections than other services, so `OUTRIGGER_HTTP_MAX_CONNECTIONS` defaults to
20,000 here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from outrigger.settings import Settings

SlowConsumerPolicy = Literal["disconnect", "drop-oldest"]


QUEUE_NAME = r"^[A-Za-z0-9_.:-]{1,200}$"


class NotificationsSettings(Settings):
    http_max_connections: int = Field(
        20_000, ge=1, description="open connections per process (SSE streams included)"
    )
    notifications_history_max_length: int = Field(
        1000, ge=1, le=10_000_000, description="messages kept per channel (about)"
    )
    notifications_history_max_age_seconds: float = Field(
        86_400.0, gt=0, description="messages older than this are trimmed"
    )
    notifications_dedupe_seconds: float = Field(
        86_400.0, gt=0, description="how long a publisher's message id is remembered"
    )
    notifications_heartbeat_seconds: float = Field(
        15.0, gt=0, description="a comment line on every stream this often"
    )
    notifications_send_timeout_seconds: float = Field(
        10.0, gt=0, description="a stream whose client reads nothing this long is closed"
    )
    notifications_queue_size: int = Field(
        1000, ge=1, le=1_000_000, description="frames waiting for one stream at most"
    )
    notifications_slow_consumer_policy: SlowConsumerPolicy = Field(
        "disconnect",
        description="when a stream's queue is full: close it (the client resumes with "
        "Last-Event-ID) or drop its oldest frame (counted)",
    )
    notifications_ingest_events: bool = Field(
        False, description="also publish the event store's events (outrigger.events)"
    )
    notifications_ingest_queue: str = Field(
        "notifications.ingest", pattern=QUEUE_NAME, description="the replicas' shared queue"
    )
    notifications_exchange: str = Field(
        "outrigger.notifications", pattern=QUEUE_NAME, description="backends publish here"
    )
    notifications_events_exchange: str = Field(
        "outrigger.events", pattern=QUEUE_NAME, description="the event store relays here"
    )
    notifications_key_prefix: str = Field("on", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    notifications_trim_interval_seconds: float = Field(60.0, gt=0)
    notifications_presence_interval_seconds: float = Field(5.0, gt=0)
