"""Adapters of the cache's ports: `redis` (production) and `memory` (embedded, same contract).

`build_stores` picks one backend from `OUTRIGGER_REDIS_URL`; the app calls it inside its
lifespan, then `await store.start()` and, on shutdown, `await store.close()` (which also ends
the lock store, since it shares the store's backend).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.cache.domain import CacheStore, LockStore
    from services.cache.settings import CacheSettings


def build_stores(settings: CacheSettings) -> tuple[CacheStore, LockStore]:
    """The entry and lock stores the settings name: in memory for `memory://`, else Redis at
    that URL."""
    if settings.redis_url.startswith("memory://"):
        from services.cache.adapters.memory import MemoryCacheStore
        from services.cache.adapters.memory_locks import MemoryLocks

        memory = MemoryCacheStore(sweep_interval_seconds=settings.cache_sweep_interval_seconds)
        return memory, MemoryLocks()
    from services.cache.adapters.redis import RedisCacheStore
    from services.cache.adapters.redis_locks import RedisLocks

    redis = RedisCacheStore(
        settings.redis_url,
        key_prefix=settings.cache_key_prefix,
        pool_size=settings.cache_redis_pool_size,
        timeout_seconds=settings.cache_redis_timeout_seconds,
    )
    return redis, RedisLocks(redis.redis, settings.cache_key_prefix)
