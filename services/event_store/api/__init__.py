"""The event store's HTTP API under `/v1` (scopes `events:read`, `events:write`, `admin`)."""

from services.event_store.api import log, snapshots, streams, subjects, subscriptions
from services.event_store.api.context import EventStoreService

ROUTERS = (streams.router, log.router, subscriptions.router, snapshots.router, subjects.router)
HOT_ROUTES = (streams.APPEND_ROUTE,)

__all__ = ["HOT_ROUTES", "ROUTERS", "EventStoreService"]
