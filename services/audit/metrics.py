"""The audit service's metrics (`outrigger_audit_*`), defined here and counted in the use-case
room (`usecases/`).

Tenants are labels, and any caller with `audit:write` can name one, so they go through
`AuditMetrics.tenant` (the kit's `BoundedLabel`): the first `OUTRIGGER_AUDIT_METRIC_TENANT_LIMIT`
tenants a process sees have series of their own, every later one counts as `other`. Dead letters
are the kit's `outrigger_bus_dead_lettered_total{queue="audit.records"}`; publishing failures of
the other services' records the kit's `outrigger_audit_publish_failures_total`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from outrigger.telemetry import BoundedLabel

INGESTED = Counter(
    "outrigger_audit_records_ingested_total",
    "Records received, by path (queue, http) and result (stored, duplicate, rejected).",
    ["path", "result"],
)
BATCH_SIZE = Histogram(
    "outrigger_audit_batch_size",
    "Records per append (one transaction), by path.",
    ["path"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
INGEST_LAG = Histogram(
    "outrigger_audit_ingest_lag_seconds",
    "From a record's `time` to the commit that stored it.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
TREE_SIZE = Gauge(
    "outrigger_audit_tree_size", "Records in the tenant's Merkle tree (its next index).", ["tenant"]
)
CHECKPOINT_AGE = Gauge(
    "outrigger_audit_checkpoint_age_seconds",
    "Age of the tenant's latest checkpoint (refreshed by the elected checkpoint loop).",
    ["tenant"],
)
VERIFY_FAILURES = Counter(
    "outrigger_audit_verify_failures_total",
    "Verifications that found the stored rows and the tree disagreeing.",
    ["tenant"],
)
CHECKPOINTS_ISSUED = Counter(
    "outrigger_audit_checkpoints_issued_total", "Checkpoints signed and stored by this process."
)
REVEALS = Counter("outrigger_audit_reveals_total", "Records revealed in clear (each one audited).")


class AuditMetrics:
    """The tenant-labelled metrics, their tenant label bounded."""

    def __init__(self, tenant_limit: int = 100) -> None:
        self.tenant = BoundedLabel(tenant_limit)

    def tree_size(self, tenant: str, size: int) -> None:
        TREE_SIZE.labels(self.tenant(tenant)).set(size)

    def checkpoint_age(self, tenant: str, seconds: float) -> None:
        CHECKPOINT_AGE.labels(self.tenant(tenant)).set(max(0.0, seconds))

    def verify_failed(self, tenant: str) -> None:
        VERIFY_FAILURES.labels(self.tenant(tenant)).inc()
