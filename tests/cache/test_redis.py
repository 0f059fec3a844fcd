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
from services.cache.adapters.redis_connection import BatchedConnection
from services.cache.adapters.redis_locks import RedisLocks
from tests.cache.contract import CacheStoreContract, LockStoreContract
from tests.cache.support import write

if TYPE_CHECKING:
    from outrigger.testing.servers import PrivateRedis

pytestmark = pytest.mark.redis


class RedisServer:
    """Each test on the shared Redis under a key prefix of its own, deleted afterwards."""

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str) -> None:
        self.url = redis_url
        self.key_prefix = unique("oc-test")

    async def forget(self) -> None:
        async with Redis.from_url(self.url) as redis:
            keys = [key async for key in redis.scan_iter(match=f"{self.key_prefix}:*")]
            if keys:
                await redis.delete(*keys)


class TestRedisLocks(RedisServer, LockStoreContract):
    async def make_adapter(self) -> RedisLocks:
        return RedisLocks(BatchedConnection(self.url, timeout_seconds=2.0), self.key_prefix)

    async def close_adapter(self, adapter: RedisLocks) -> None:
        await adapter.redis.close()


class TestRedisCacheStore(RedisServer, CacheStoreContract):
    async def make_adapter(self) -> RedisCacheStore:
        return RedisCacheStore(self.url, key_prefix=self.key_prefix, timeout_seconds=2.0)

    @pytest.fixture
    async def raw(self, redis_url: str) -> Redis:
        async with Redis.from_url(redis_url) as redis:
            yield redis

    async def test_entries_live_under_the_documented_keys(
        self, store: RedisCacheStore, ns: str, raw: Redis
    ) -> None:
        await store.put(ns, write("user:1", b"v", ttl_ms=5000, swr_ms=1000, tags=frozenset("a")))
        space = f"{self.key_prefix}:{{{ns}}}:"
        fields = await raw.hgetall(f"{space}k:user:1")
        assert set(fields) == {b"v", b"ct", b"ver", b"tags", b"cr", b"swr"}
        assert 5000 < await raw.pttl(f"{space}k:user:1") <= 6000
        assert await raw.zrange(f"{space}t:a", 0, -1) == [b"user:1"]
        assert await raw.sismember(f"{self.key_prefix}:namespaces", ns)
        locks = RedisLocks(store.redis, self.key_prefix)
        lock = await locks.acquire(resource := unique("r"), 1000)
        assert await raw.get(f"{self.key_prefix}:lock:{{{resource}}}") == lock.token.encode()
        fence = await raw.hget(f"{self.key_prefix}:fence:{{{resource}}}", "issued")
        assert fence == str(lock.fence).encode()

    async def test_a_tag_index_holds_only_live_entries_and_expires_with_them(
        self, store: RedisCacheStore, ns: str, raw: Redis
    ) -> None:
        tag = frozenset({"t"})
        index = f"{self.key_prefix}:{{{ns}}}:t:t"
        await store.mset(ns, [write(f"old{i}", b"v", ttl_ms=100, tags=tag) for i in range(50)])
        assert await raw.zcard(index) == 50
        await asyncio.sleep(0.15)
        await store.put(ns, write("new", b"v", ttl_ms=300, tags=tag))
        assert await raw.zrange(index, 0, -1) == [b"new"]
        assert 0 < await raw.pttl(index) <= 300
        await asyncio.sleep(0.35)
        assert await raw.exists(index) == 0
        await store.put(ns, write("again", b"v", tags=tag))
        await store.invalidate_tags(ns, ["t"])
        assert await raw.exists(index) == 0

    async def test_an_unreachable_server_is_a_cache_error_at_once(self) -> None:
        store = RedisCacheStore("redis://user:secret@127.0.0.1:1/0", timeout_seconds=1.0)
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
    store = RedisCacheStore(redis_server.url, key_prefix="oc-test", timeout_seconds=2.0)
    locks = RedisLocks(store.redis, "oc-test")
    ns = unique("ns")
    try:
        await store.put(ns, write("k", b"before"))
        await asyncio.to_thread(redis_server.stop)
        with pytest.raises(CacheError, match="unreachable") as down:
            await store.get(ns, "k")
        assert down.value.status == 503
        with pytest.raises(CacheError):
            await store.check()
        with pytest.raises(CacheError):
            await store.put(ns, write("k", b"during"))
        with pytest.raises(CacheError):
            await locks.acquire(unique("r"), 1000)
        await asyncio.to_thread(redis_server.start)
        deadline = time.monotonic() + 30
        while True:
            try:
                await store.check()
                break
            except CacheError:
                assert time.monotonic() < deadline, "the store did not reconnect within 30 s"
                await asyncio.sleep(0.2)
        written = await store.put(ns, write("k", b"after"))
        read = await store.get(ns, "k")
        assert read is not None
        assert (read.value, read.version) == (b"after", written.version)
        lock = await locks.acquire(unique("r"), 1000)
        assert lock.fence > 0
    finally:
        await store.close()
