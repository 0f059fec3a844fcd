"""The cache's contracts, written once; each adapter's test module subclasses them.

`CacheStoreContract` gathers the entry behaviours, grouped by concern in the `contract_*`
modules; `LockStoreContract` (in `contract_locks`) is the lock port's. A subclass implements
`make_adapter()` (and `forget()` when its backend outlives the test).
"""

from __future__ import annotations

from services.cache.domain import CacheStore, StoreStats
from tests.cache.contract_entries import EntryContract
from tests.cache.contract_invalidation import InvalidationContract
from tests.cache.contract_leases import LeaseContract
from tests.cache.contract_locks import LockStoreContract


class CacheStoreContract(EntryContract, InvalidationContract, LeaseContract):
    async def test_a_working_store_is_ready_and_counts(self, store: CacheStore) -> None:
        await store.check()
        stats = await store.stats()
        assert isinstance(stats, StoreStats)
        assert stats.expired_keys >= 0
        assert stats.evicted_keys >= 0


__all__ = ["CacheStoreContract", "LockStoreContract"]
