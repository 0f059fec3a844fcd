"""The cache's metrics: namespaces as labels stay few whatever callers name; the stats poll."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from prometheus_client import REGISTRY

from outrigger.telemetry.labels import OTHER
from outrigger.testing import unique
from services.cache.domain import StoreStats
from services.cache.metrics import CacheMetrics, StatsFollower
from tests.cache.http_support import CacheApi, Service


def hits(label: str) -> float:
    return REGISTRY.get_sample_value("outrigger_cache_hits_total", {"namespace": label}) or 0.0


def test_the_first_namespaces_get_their_own_label_and_the_rest_are_other() -> None:
    metrics = CacheMetrics(limit=2)
    first, second, third = unique("a"), unique("b"), unique("c")
    other_before = hits(OTHER)
    for namespace in (first, second, third, first, third):
        metrics.looked_up(namespace, 1, 0)
    assert (hits(first), hits(second), hits(third)) == (2.0, 1.0, 0.0)
    assert hits(OTHER) == other_before + 2
    assert metrics.label(third) == OTHER


def test_with_no_room_left_only_the_configured_namespaces_have_labels() -> None:
    kept = unique("kept")
    metrics = CacheMetrics([kept], limit=0)
    other_before = hits(OTHER)
    stranger = unique("stranger")
    metrics.looked_up(stranger, 3, 0)
    metrics.looked_up(kept, 1, 0)
    metrics.looked_up(OTHER, 1, 0)  # a namespace named "other" shares the bucket
    assert (metrics.label(kept), metrics.label(stranger)) == (kept, OTHER)
    assert hits(kept) == 1.0
    assert hits(stranger) == 0.0
    assert hits(OTHER) == other_before + 4


class TestNamespaceLabels(CacheApi):
    async def test_reading_many_namespaces_adds_a_bounded_number_of_series(
        self, make_service: Callable[..., AbstractAsyncContextManager[Service]]
    ) -> None:
        async with make_service(cache_metric_namespace_limit=3) as service:
            namespaces = [unique("scan") for _ in range(50)]
            for namespace in namespaces:
                assert (await service.http.get(f"/v1/cache/{namespace}/k")).status_code == 404
            exposed = (await service.http.get("/metrics")).text
        labelled = [ns for ns in namespaces if f'namespace="{ns}"' in exposed]
        assert labelled == namespaces[:3]
        assert re.search(r'outrigger_cache_misses_total\{namespace="other"\} [1-9]', exposed)

    async def test_the_setting_names_the_namespaces_counted_on_their_own(
        self, make_service: Callable[..., AbstractAsyncContextManager[Service]]
    ) -> None:
        kept, stranger = unique("kept"), unique("stranger")
        async with make_service(
            cache_metric_namespaces=f" {kept}, users ", cache_metric_namespace_limit=0
        ) as service:
            for namespace in (kept, stranger):
                await service.http.get(f"/v1/cache/{namespace}/k")
            exposed = (await service.http.get("/metrics")).text
        assert f'outrigger_cache_misses_total{{namespace="{kept}"}} 1.0' in exposed
        assert f'namespace="{stranger}"' not in exposed


def counted() -> tuple[float, float]:
    return (
        REGISTRY.get_sample_value("outrigger_cache_expirations_total") or 0.0,
        REGISTRY.get_sample_value("outrigger_cache_evictions_total") or 0.0,
    )


def test_expirations_and_evictions_are_counted_from_the_growth_of_the_store_stats() -> None:
    follower = StatsFollower()
    expired, evicted = counted()
    follower.observe(StoreStats(expired_keys=100, evicted_keys=5))  # the baseline: not counted
    follower.observe(StoreStats(expired_keys=130, evicted_keys=5))
    follower.observe(StoreStats(expired_keys=4, evicted_keys=1))  # the backend restarted
    assert counted() == (expired + 34, evicted + 1)
