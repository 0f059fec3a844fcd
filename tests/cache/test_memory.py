"""The cache contracts on the in-memory adapters, plus what only they promise."""

from __future__ import annotations

import asyncio

from services.cache.adapters.memory import MemoryCacheStore
from services.cache.adapters.memory_locks import MemoryLocks
from tests.cache.contract import CacheStoreContract, LockStoreContract
from tests.cache.support import write


class TestMemoryCacheStore(CacheStoreContract):
    async def make_adapter(self) -> MemoryCacheStore:
        store = MemoryCacheStore(sweep_interval_seconds=0.05)
        await store.start()
        return store

    async def test_the_sweep_removes_expired_entries_nobody_reads(
        self, store: MemoryCacheStore, ns: str
    ) -> None:
        tags = frozenset({"t"})
        await store.mset(ns, [write(f"k{i}", ttl_ms=100, tags=tags) for i in range(10)])
        await asyncio.sleep(0.25)
        assert (await store.stats()).expired_keys == 10
        assert store._entries == {}
        assert store._tags == {}

    async def test_close_is_idempotent_and_start_is_too(self, store: MemoryCacheStore) -> None:
        await store.start()
        await store.close()
        await store.close()


class TestMemoryLocks(LockStoreContract):
    async def make_adapter(self) -> MemoryLocks:
        return MemoryLocks()
