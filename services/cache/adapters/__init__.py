"""Adapters of the cache port: `redis` (production) and `memory` (embedded, same contract).

`build_store` picks one from `OUTRIGGER_REDIS_URL`; the app calls it inside its lifespan, then
`await store.start()` and, on shutdown, `await store.close()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.cache.domain import CacheStore
    from services.cache.settings import CacheSettings


def build_store(settings: CacheSettings) -> CacheStore:
    """The store the settings name: in memory for `memory://`, else Redis at that URL."""
    if settings.redis_url.startswith("memory://"):
        from services.cache.adapters.memory import MemoryCacheStore

        return MemoryCacheStore(
            settings.limits(), sweep_interval_seconds=settings.cache_sweep_interval_seconds
        )
    from services.cache.adapters.redis import RedisCacheStore

    return RedisCacheStore(
        settings.redis_url,
        settings.limits(),
        key_prefix=settings.cache_key_prefix,
        pool_size=settings.cache_redis_pool_size,
        timeout_seconds=settings.cache_redis_timeout_seconds,
    )
