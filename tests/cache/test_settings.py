"""The cache's settings: TTLs per namespace from JSON, limits, and the adapter the URL picks."""

from __future__ import annotations

import pytest

from outrigger.settings import SettingsError, load_settings
from services.cache.adapters import build_stores
from services.cache.adapters.memory import MemoryCacheStore
from services.cache.adapters.memory_locks import MemoryLocks
from services.cache.adapters.redis import RedisCacheStore
from services.cache.adapters.redis_locks import RedisLocks
from services.cache.domain import TtlPolicy, WriteCondition
from services.cache.settings import CacheSettings


def test_defaults_are_one_mib_values_and_five_minute_ttls() -> None:
    limits = CacheSettings().limits()
    assert limits.max_value_bytes == 1024 * 1024
    assert limits.ttl == TtlPolicy(default_ms=300_000, max_ms=86_400_000)
    assert limits.ttl_policy("anything") == limits.ttl


def test_namespace_ttls_come_from_json_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "OUTRIGGER_CACHE_NAMESPACE_TTLS",
        '{"users": {"default": 60, "max": 3600}, "hot": {"default": 0.5, "max": 2}}',
    )
    monkeypatch.setenv("OUTRIGGER_CACHE_MAX_VALUE_BYTES", "2048")
    limits = load_settings(CacheSettings).limits()
    assert limits.ttl_policy("users") == TtlPolicy(default_ms=60_000, max_ms=3_600_000)
    assert limits.ttl_policy("hot") == TtlPolicy(default_ms=500, max_ms=2_000)
    assert limits.max_value_bytes == 2048


@pytest.mark.parametrize(
    ("ttls", "message"),
    [
        ('{"users": {"default": 60, "max": 30}}', "default 60 s is above max 30 s"),
        ('{"Users!": {"default": 1, "max": 2}}', "namespace 'Users!' must be"),
        ('{"users": {"default": 0, "max": 2}}', "greater than or equal to 0.001"),
        ('{"users": {"default": 1, "max": 1e308}}', "less than or equal to 31536000"),
        ('{"users": {"default": 1, "maximum": 2}}', "NAMESPACE_TTLS.users.max: Field required"),
    ],
)
def test_bad_namespace_ttls_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, ttls: str, message: str
) -> None:
    monkeypatch.setenv("OUTRIGGER_CACHE_NAMESPACE_TTLS", ttls)
    with pytest.raises(SettingsError, match="OUTRIGGER_CACHE_NAMESPACE_TTLS") as bad:
        load_settings(CacheSettings)
    assert message in str(bad.value)


def test_a_default_above_the_maximum_is_refused() -> None:
    with pytest.raises(SettingsError, match="above cache_max_ttl_seconds"):
        load_settings(CacheSettings, cache_default_ttl_seconds=10, cache_max_ttl_seconds=5)


async def test_the_url_picks_the_adapters() -> None:
    memory, memory_locks = build_stores(CacheSettings(redis_url="memory://"))
    assert isinstance(memory, MemoryCacheStore)
    assert isinstance(memory_locks, MemoryLocks)
    redis, redis_locks = build_stores(CacheSettings(redis_url="redis://127.0.0.1:6379/15"))
    assert isinstance(redis, RedisCacheStore)
    assert isinstance(redis_locks, RedisLocks)
    assert redis_locks.redis is redis.redis
    await redis.close()
    await memory.close()


def test_conditions_hold_as_http_says() -> None:
    both = WriteCondition(if_match="v1", if_none_match_any=True)
    assert not both.holds("v1")
    assert not both.holds(None)
    assert WriteCondition().holds(None)
    assert WriteCondition(if_match="v1").holds("v1")
    assert not WriteCondition(if_match="v1").holds(None)
    assert not WriteCondition(if_none_match_any=True).holds("v1")


def test_metric_namespaces_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTRIGGER_CACHE_METRIC_NAMESPACES", " users, orders ,")
    assert load_settings(CacheSettings).cache_metric_namespaces == {"users", "orders"}
    monkeypatch.setenv("OUTRIGGER_CACHE_METRIC_NAMESPACES", "users,Orders")
    with pytest.raises(SettingsError, match="OUTRIGGER_CACHE_METRIC_NAMESPACES") as bad:
        load_settings(CacheSettings)
    assert "namespace 'Orders' must be" in str(bad.value)
