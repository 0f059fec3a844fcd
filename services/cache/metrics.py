"""The cache's own metrics (prefix `outrigger_cache_`), next to the kit's RED metrics per route.

The hit ratio per namespace is the PromQL ratio (recorded as `namespace:outrigger_cache_hit_ratio:
rate5m` in prometheus/rules/cache.yml)

    sum by (namespace) (rate(outrigger_cache_hits_total[5m]))
      / (sum by (namespace) (rate(outrigger_cache_hits_total[5m]))
         + sum by (namespace) (rate(outrigger_cache_misses_total[5m])))

and, since it is cheap, also a gauge over the process's life, refreshed with the store's stats.
Expirations and evictions only the backend sees: `watch_store` polls `store.stats()` and adds
what grew since the last poll (a backend restart resets its counts: then all of it is new).
Namespaces are labels, so keep them few (they are names of data sets, not of users).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

from outrigger.errors import OutriggerError

if TYPE_CHECKING:
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
class _Lookups:
    """One namespace's counter children (looked up once, not per request) and running totals."""

    hits: Counter
    misses: Counter
    hit_count: int = 0
    miss_count: int = 0


_lookups: dict[str, _Lookups] = {}


def looked_up(namespace: str, hits: int, misses: int) -> None:
    """Counts lookups of one namespace: `hits` fresh entries found, `misses` not."""
    counts = _lookups.get(namespace)
    if counts is None:
        counts = _lookups[namespace] = _Lookups(HITS.labels(namespace), MISSES.labels(namespace))
    if hits:
        counts.hits.inc(hits)
        counts.hit_count += hits
    if misses:
        counts.misses.inc(misses)
        counts.miss_count += misses


def refresh_hit_ratios() -> None:
    for namespace, counts in list(_lookups.items()):
        total = counts.hit_count + counts.miss_count
        HIT_RATIO.labels(namespace).set(counts.hit_count / total if total else 0.0)


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


async def watch_store(store: CacheStore, interval_seconds: float) -> None:
    """Forever: polls the store's stats and refreshes the gauges, every `interval_seconds`."""
    follower = StatsFollower()
    while True:
        try:
            follower.observe(await store.stats())
        except OutriggerError as exc:
            log.warning("cache stats unavailable: %s", exc.detail)
        refresh_hit_ratios()
        await asyncio.sleep(interval_seconds)
