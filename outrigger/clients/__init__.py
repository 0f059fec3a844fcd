"""Typed HTTP clients for the Outrigger services (the Python SDK): async ones, and blocking
facades of them for scripts (`outrigger.clients.sync`). They return the dataclasses of
`event_store_models`, `cache_models`, `audit_models`, `notifications_models` and
`plugins_models`, and raise the `outrigger.errors` class of the problem a service answers.
`audit_verify` checks the audit service's checkpoints, proofs and exports offline."""

from outrigger.clients.audit import AuditClient
from outrigger.clients.audit_models import (
    AuditRecord,
    Checkpoint,
    ConsistencyProof,
    ExportedCheckpoint,
    ExportedRecord,
    ExportLine,
    InclusionProof,
    Mismatch,
    Receipt,
    RecordPage,
    Verification,
)
from outrigger.clients.audit_verify import ExportVerification, verify_export
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
from outrigger.clients.notifications import NotificationsClient
from outrigger.clients.notifications_models import (
    ChannelInfo,
    Notification,
    Published,
    Received,
    Reset,
)
from outrigger.clients.plugins import PluginsClient
from outrigger.clients.plugins_models import (
    Job,
    JobProgress,
    LoadProblem,
    PluginInfo,
    PluginLimits,
    PluginList,
    RunResult,
    RunUsage,
)
from outrigger.clients.sync import (
    SyncAuditClient,
    SyncCacheClient,
    SyncEventStoreClient,
    SyncNotificationsClient,
    SyncPluginsClient,
)

__all__ = [
    "IDEMPOTENT_METHODS",
    "Appended",
    "AuditClient",
    "AuditRecord",
    "CacheClient",
    "CachedValue",
    "ChannelInfo",
    "Checkpoint",
    "ConsistencyProof",
    "EventStoreClient",
    "ExpectedVersion",
    "ExportLine",
    "ExportVerification",
    "ExportedCheckpoint",
    "ExportedRecord",
    "HeldLock",
    "InclusionProof",
    "Job",
    "JobProgress",
    "LoadProblem",
    "LockLease",
    "LockLost",
    "LogPage",
    "Lookup",
    "Mismatch",
    "Notification",
    "NotificationsClient",
    "PluginInfo",
    "PluginLimits",
    "PluginList",
    "PluginsClient",
    "Published",
    "Receipt",
    "Received",
    "RecordPage",
    "RecordedEvent",
    "Reset",
    "RunResult",
    "RunUsage",
    "ServiceClient",
    "Snapshot",
    "StoredEntry",
    "StreamInfo",
    "StreamMetadata",
    "StreamPage",
    "SyncAuditClient",
    "SyncCacheClient",
    "SyncEventStoreClient",
    "SyncNotificationsClient",
    "SyncPluginsClient",
    "Verification",
    "verify_export",
]
