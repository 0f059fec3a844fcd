"""Typed HTTP clients for the Outrigger services (the Python SDK): async ones, and blocking
facades of them for scripts (`outrigger.clients.sync`). They return the dataclasses of
`event_store_models` and `cache_models`, and raise the `outrigger.errors` class of the problem
a service answers."""

from outrigger.clients.base import IDEMPOTENT_METHODS, ServiceClient
from outrigger.clients.cache import CacheClient
from outrigger.clients.cache_models import (
    CachedValue,
    HeldLock,
    LockLease,
    LockLost,
    Lookup,
    StoredEntry,
)
from outrigger.clients.event_store import EventStoreClient
from outrigger.clients.event_store_models import (
    Appended,
    ExpectedVersion,
    LogPage,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamMetadata,
    StreamPage,
)
from outrigger.clients.sync import SyncCacheClient, SyncEventStoreClient

__all__ = [
    "IDEMPOTENT_METHODS",
    "Appended",
    "CacheClient",
    "CachedValue",
    "EventStoreClient",
    "ExpectedVersion",
    "HeldLock",
    "LockLease",
    "LockLost",
    "LogPage",
    "Lookup",
    "RecordedEvent",
    "ServiceClient",
    "Snapshot",
    "StoredEntry",
    "StreamInfo",
    "StreamMetadata",
    "StreamPage",
    "SyncCacheClient",
    "SyncEventStoreClient",
]
