"""The cache's own metrics (prefix `outrigger_cache_`), next to the kit's RED metrics per route.

The use-case room counts them through `CacheMetrics`. The hit ratio per namespace is the PromQL
ratio (recorded as `namespace:outrigger_cache_hit_ratio:rate5m` in prometheus/rules/cache.yml)

    sum by (namespace) (rate(outrigger_cache_hits_total[5m]))
      / (sum by (namespace) (rate(outrigger_cache_hits_total[5m]))
         + sum by (namespace) (rate(outrigger_cache_misses_total[5m])))

and, since it is cheap, also a gauge over the process's life, refreshed with the store's stats.
Expirations and evictions only the backend sees: `StoreWatch` polls `store.stats()` and adds
what grew since the last poll (a backend restart resets its counts: then all of it is new).

Namespaces are labels, and any caller with `cache:read` can name one, so their number is
bounded (`outrigger.telemetry.BoundedLabel`): the namespaces of `OUTRIGGER_CACHE_METRIC_NAMESPACES`
and the first `OUTRIGGER_CACHE_METRIC_NAMESPACE_LIMIT` others this process counts have labels of
their own; every later one is counted under `namespace="other"` (as is a namespace named so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

from outrigger.errors import OutriggerError
from outrigger.telemetry import BoundedLabel

if TYPE_CHECKING:
    from collections.abc import Collection

    from services.cache.domain import CacheStore, StoreStats

log = logging.getLogger("outrigger.cache")

HITS = Counter(
    "outrigger_cache_hits_total", "Keys looked up (GET, mget) and found fresh.", ["namespace"]
)
MISSES = Counter(
    "outrigger_cache_misses_total", "Lookups that found no fresh entry.", ["namespace"]
)
HIT_RATIO = Gauge(
    "outrigger_cache_hit_ratio",
    "Hits / lookups since this process started, refreshed with the store stats.",
    ["namespace"],
)
STALE_SERVED = Counter(
    "outrigger_cache_stale_served_total",
    "Stale entries served inside their stale-while-revalidate window.",
    ["namespace"],
)
FILL_LEASES = Counter(
    "outrigger_cache_fill_leases_total", "Fill leases granted to a caller.", ["namespace"]
)
FILL_WAITS = Counter(
    "outrigger_cache_fill_waits_total",
    "Lease lookups told to retry later because another caller was filling.",
    ["namespace"],
)
EXPIRATIONS = Counter(
    "outrigger_cache_expirations_total", "Keys the backend expired (Redis: the whole server)."
)
EVICTIONS = Counter(
    "outrigger_cache_evictions_total", "Keys the backend evicted for memory (Redis: maxmemory)."
)
LOCK_ACQUISITIONS = Counter(
    "outrigger_cache_lock_acquisitions_total", "Locks acquired (the lock resource is not a label)."
)
LOCK_CONTENTION = Counter(
    "outrigger_cache_lock_contention_total", "Acquires refused because another holder had the lock."
)
LOCK_LOSSES = Counter(
    "outrigger_cache_lock_losses_total",
    "Leases lost: taken over after they ran out, or a renew or release by a non-holder.",
    ["reason"],
)
INVALIDATIONS = Counter(
    "outrigger_cache_invalidations_total",
    "Invalidations run, by what asked for them (api, event).",
    ["source"],
)
INVALIDATED_ENTRIES = Counter(
    "outrigger_cache_invalidated_entries_total",
    "Entries removed by invalidations, by what asked for them.",
    ["source"],
)
INVALIDATION_LAG = Histogram(
    "outrigger_cache_invalidation_lag_seconds",
    "From an event's time to the end of the invalidation it caused.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


@dataclass(slots=True)
class _Namespace:
    """One namespace label's counter children (looked up once, not per request) and its
    running totals for the hit ratio gauge."""

    label: str
    hits: Counter
    misses: Counter
    stale: Counter
    leases: Counter
    waits: Counter
    hit_count: int = 0
    miss_count: int = 0

    @classmethod
    def of(cls, label: str) -> _Namespace:
        return cls(
            label,
            HITS.labels(label),
            MISSES.labels(label),
            STALE_SERVED.labels(label),
            FILL_LEASES.labels(label),
            FILL_WAITS.labels(label),
        )


class CacheMetrics:
    """The domain metrics of one running cache, with namespace labels bounded (module doc)."""

    def __init__(self, namespaces: Collection[str] = (), limit: int = 100) -> None:
        self._label = BoundedLabel(limit, namespaces)
        self._other = _Namespace.of(self._label.other)
        self._labelled: dict[str, _Namespace] = {}

    def _namespace(self, namespace: str) -> _Namespace:
        counts = self._labelled.get(namespace)
        if counts is None:
            label = self._label(namespace)
            if label == self._other.label:
                return self._other  # not remembered: callers may name any number of these
            counts = self._labelled[namespace] = _Namespace.of(label)
        return counts

    def label(self, namespace: str) -> str:
        """The `namespace` label that `namespace` is counted under."""
        return self._namespace(namespace).label

    def looked_up(self, namespace: str, hits: int, misses: int) -> None:
        """Counts lookups of one namespace: `hits` fresh entries found, `misses` not."""
        counts = self._namespace(namespace)
        if hits:
            counts.hits.inc(hits)
            counts.hit_count += hits
        if misses:
            counts.misses.inc(misses)
            counts.miss_count += misses

    def stale_served(self, namespace: str) -> None:
        self._namespace(namespace).stale.inc()

    def lease_granted(self, namespace: str) -> None:
        self._namespace(namespace).leases.inc()

    def told_to_wait(self, namespace: str) -> None:
        self._namespace(namespace).waits.inc()

    def invalidated(self, source: str, removed: int, *, lag_seconds: float | None = None) -> None:
        """An invalidation asked by `source` (api, event) removed `removed` entries, the time
        `lag_seconds` after the event that caused it."""
        INVALIDATIONS.labels(source).inc()
        INVALIDATED_ENTRIES.labels(source).inc(removed)
        if lag_seconds is not None:
            INVALIDATION_LAG.observe(max(lag_seconds, 0.0))

    def lock_acquired(self, *, took_over: bool) -> None:
        LOCK_ACQUISITIONS.inc()
        if took_over:
            LOCK_LOSSES.labels("taken_over").inc()

    def lock_contended(self) -> None:
        LOCK_CONTENTION.inc()

    def lock_lost(self, reason: str) -> None:
        """A renew or release by a holder that had lost the lock (`renew_refused`, ...)."""
        LOCK_LOSSES.labels(reason).inc()

    def refresh_hit_ratios(self) -> None:
        for counts in [*self._labelled.values(), self._other]:
            total = counts.hit_count + counts.miss_count
            if total:
                HIT_RATIO.labels(counts.label).set(counts.hit_count / total)


class StatsFollower:
    """Adds to the expiration and eviction counters what grew since the last `observe`."""

    def __init__(self) -> None:
        self._last: StoreStats | None = None

    def observe(self, stats: StoreStats) -> None:
        last = self._last
        self._last = stats
        if last is None:
            return
        for counter, now, before in (
            (EXPIRATIONS, stats.expired_keys, last.expired_keys),
            (EVICTIONS, stats.evicted_keys, last.evicted_keys),
        ):
            counter.inc(now - before if now >= before else now)


class StoreWatch:
    """A step for `outrigger.tasks.Periodic`: polls the store's stats into the expiration and
    eviction counters, and refreshes the hit ratio gauges."""

    def __init__(self, store: CacheStore, metrics: CacheMetrics) -> None:
        self.store = store
        self.metrics = metrics
        self.follower = StatsFollower()

    async def __call__(self) -> None:
        try:
            self.follower.observe(await self.store.stats())
        except OutriggerError as exc:
            log.warning("cache stats unavailable: %s", exc.detail)
        self.metrics.refresh_hit_ratios()
