"""The CacheStore contract, written once; each adapter's test module subclasses it.

A subclass provides the `store_url` fixture and the `make_store(url, limits)` hook, and
`forget(url)` when its backend outlives the test. The behaviours are grouped by concern in the
`contract_*` modules; this class is the one suite that runs them all.
"""

from __future__ import annotations

import pytest

from outrigger.errors import InvalidInput
from services.cache.domain import CacheStore, StoreStats, Write
from tests.cache.contract_entries import EntryContract
from tests.cache.contract_invalidation import InvalidationContract
from tests.cache.contract_leases import LeaseContract
from tests.cache.contract_locks import LockContract


class CacheStoreContract(EntryContract, InvalidationContract, LeaseContract, LockContract):
    async def test_a_working_store_is_ready_and_counts(self, store: CacheStore) -> None:
        await store.check()
        stats = await store.stats()
        assert isinstance(stats, StoreStats)
        assert stats.expired_keys >= 0
        assert stats.evicted_keys >= 0

    async def test_bad_input_changes_nothing_and_says_why(self, store: CacheStore, ns: str) -> None:
        with pytest.raises(InvalidInput) as refused:
            await store.put("Bad Namespace", Write("k", b"v"))
        assert "must be 1-64 characters of a-z, 0-9, _ and -" in refused.value.detail
        assert refused.value.status == 422
        assert await store.get(ns, "k") is None
