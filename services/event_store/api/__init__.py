"""The event store's HTTP API under `/v1` (scopes `events:read`, `events:write`,
`events:reveal`, `admin`)."""

from services.event_store.api import log, snapshots, streams, subjects, subscriptions

ROUTERS = (streams.router, log.router, subscriptions.router, snapshots.router, subjects.router)

__all__ = ["ROUTERS"]
