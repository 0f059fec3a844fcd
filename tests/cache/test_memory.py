"""The cache contract on the in-memory adapter, plus what only it promises."""

from __future__ import annotations

import asyncio

import pytest

from services.cache.adapters.memory import MemoryCacheStore
from services.cache.domain import CacheLimits, CacheStore, Write
from tests.cache.contract import CacheStoreContract
from tests.cache.support import LIMITS, NewStore


class TestMemoryCacheStore(CacheStoreContract):
    @pytest.fixture
    def store_url(self) -> str:
        return "memory://"

    def make_store(self, url: str, limits: CacheLimits) -> CacheStore:
        return MemoryCacheStore(limits, sweep_interval_seconds=0.05)

    async def test_the_sweep_removes_expired_entries_nobody_reads(self, ns: str) -> None:
        store = MemoryCacheStore(LIMITS, sweep_interval_seconds=0.05)
        await store.start()
        try:
            tags = frozenset({"t"})
            await store.mset(ns, [Write(f"k{i}", b"v", ttl_ms=100, tags=tags) for i in range(10)])
            await asyncio.sleep(0.25)
            assert (await store.stats()).expired_keys == 10
            assert store._entries == {}
            assert store._tags == {}
        finally:
            await store.close()

    async def test_close_is_idempotent_and_start_is_too(self, new_store: NewStore) -> None:
        store = await new_store()
        await store.start()
        await store.close()
        await store.close()
