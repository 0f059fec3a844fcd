"""The cache contract on Redis, plus its key layout, bounded tag indexes, and Redis going away
(a private Redis of the test's own, which it stops and starts).

Other suites share Redis db 15, so every test writes under its own key prefix and namespace and
deletes only those keys afterwards; nothing here flushes the database.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest
from redis.asyncio import Redis

from outrigger.errors import CacheError
from outrigger.testing import unique
from services.cache.adapters.redis import RedisCacheStore
from services.cache.domain import CacheLimits, CacheStore, Write
from tests.cache.contract import CacheStoreContract
from tests.cache.support import LIMITS

if TYPE_CHECKING:
    from outrigger.testing.servers import PrivateRedis

pytestmark = pytest.mark.redis


class TestRedisCacheStore(CacheStoreContract):
    @pytest.fixture(autouse=True)
    def _own_key_prefix(self) -> None:
        self.key_prefix = unique("oc-test")

    @pytest.fixture
    def store_url(self, redis_url: str) -> str:
        return redis_url

    def make_store(self, url: str, limits: CacheLimits) -> CacheStore:
        return RedisCacheStore(url, limits, key_prefix=self.key_prefix, timeout_seconds=2.0)

    async def forget(self, url: str) -> None:
        async with Redis.from_url(url) as redis:
            keys = [key async for key in redis.scan_iter(match=f"{self.key_prefix}:*")]
            if keys:
                await redis.delete(*keys)

    @pytest.fixture
    async def raw(self, redis_url: str) -> Redis:
        async with Redis.from_url(redis_url) as redis:
            yield redis

    async def test_entries_live_under_the_documented_keys(
        self, store: CacheStore, ns: str, raw: Redis
    ) -> None:
        await store.put(ns, Write("user:1", b"v", ttl_ms=5000, swr_ms=1000, tags=frozenset("a")))
        space = f"{self.key_prefix}:{{{ns}}}:"
        fields = await raw.hgetall(f"{space}k:user:1")
        assert set(fields) == {b"v", b"ct", b"ver", b"tags", b"cr", b"swr"}
        assert 5000 < await raw.pttl(f"{space}k:user:1") <= 6000
        assert await raw.zrange(f"{space}t:a", 0, -1) == [b"user:1"]
        assert await raw.sismember(f"{self.key_prefix}:namespaces", ns)
        lock = await store.acquire(resource := unique("r"), 1000)
        assert await raw.get(f"{self.key_prefix}:lock:{{{resource}}}") == lock.token.encode()
        fence = await raw.hget(f"{self.key_prefix}:fence:{{{resource}}}", "issued")
        assert fence == str(lock.fence).encode()

    async def test_a_tag_index_holds_only_live_entries_and_expires_with_them(
        self, store: CacheStore, ns: str, raw: Redis
    ) -> None:
        tag = frozenset({"t"})
        index = f"{self.key_prefix}:{{{ns}}}:t:t"
        await store.mset(ns, [Write(f"old{i}", b"v", ttl_ms=100, tags=tag) for i in range(50)])
        assert await raw.zcard(index) == 50
        await asyncio.sleep(0.15)
        await store.put(ns, Write("new", b"v", ttl_ms=300, tags=tag))
        assert await raw.zrange(index, 0, -1) == [b"new"]
        assert 0 < await raw.pttl(index) <= 300
        await asyncio.sleep(0.35)
        assert await raw.exists(index) == 0
        await store.put(ns, Write("again", b"v", tags=tag))
        await store.invalidate_tags(ns, ["t"])
        assert await raw.exists(index) == 0

    async def test_an_unreachable_server_is_a_cache_error_at_once(self) -> None:
        store = RedisCacheStore("redis://user:secret@127.0.0.1:1/0", LIMITS, timeout_seconds=1.0)
        started = time.monotonic()
        try:
            with pytest.raises(CacheError, match=r"Redis at 127\.0\.0\.1:1/0 is unreachable"):
                await store.get("ns", "k")
            with pytest.raises(CacheError) as failed:
                await store.check()
        finally:
            await store.close()
        assert time.monotonic() - started < 3
        assert "secret" not in failed.value.detail
        assert failed.value.status == 503


async def test_the_same_store_recovers_after_a_redis_restart(redis_server: PrivateRedis) -> None:
    store = RedisCacheStore(redis_server.url, LIMITS, key_prefix="oc-test", timeout_seconds=2.0)
    ns = unique("ns")
    try:
        await store.put(ns, Write("k", b"before"))
        await asyncio.to_thread(redis_server.stop)
        with pytest.raises(CacheError, match="unreachable") as down:
            await store.get(ns, "k")
        assert down.value.status == 503
        with pytest.raises(CacheError):
            await store.check()
        with pytest.raises(CacheError):
            await store.put(ns, Write("k", b"during"))
        with pytest.raises(CacheError):
            await store.acquire(unique("r"), 1000)
        await asyncio.to_thread(redis_server.start)
        deadline = time.monotonic() + 30
        while True:
            try:
                await store.check()
                break
            except CacheError:
                assert time.monotonic() < deadline, "the store did not reconnect within 30 s"
                await asyncio.sleep(0.2)
        written = await store.put(ns, Write("k", b"after"))
        read = await store.get(ns, "k")
        assert read is not None
        assert (read.value, read.version) == (b"after", written.version)
        lock = await store.acquire(unique("r"), 1000)
        assert lock.fence > 0
    finally:
        await store.close()
