"""The contract for fill leases: one filler per miss, waiters or stale copies for the rest."""

from __future__ import annotations

import asyncio
import time

import pytest

from outrigger.errors import Conflict
from services.cache.domain import CacheStore, Entry, Lookup
from tests.cache.support import CacheStoreSuite, write

CALLERS = 50


class LeaseContract(CacheStoreSuite):
    async def test_one_of_fifty_concurrent_callers_fills_and_the_others_get_its_value(
        self, store: CacheStore, ns: str
    ) -> None:
        loads = 0

        async def read_through() -> tuple[bool, Entry | None]:
            nonlocal loads
            found = await store.acquire_fill_lease(ns, "k", lease_ms=2000, wait_ms=1000)
            if found.lease is None:
                return False, found.entry
            loads += 1
            await asyncio.sleep(0.1)
            return True, await store.fill(ns, write("k", b"loaded"), found.lease.token)

        results = await asyncio.gather(*(read_through() for _ in range(CALLERS)))
        fillers = [entry for filled, entry in results if filled]
        assert loads == 1
        assert len(fillers) == 1
        [filled] = fillers
        assert filled is not None
        others = [entry for was_filler, entry in results if not was_filler]
        assert all(entry is not None and entry.version == filled.version for entry in others)
        found = await store.acquire_fill_lease(ns, "k", lease_ms=2000)
        assert found == Lookup(found.entry)
        assert found.entry is not None
        assert found.entry.value == b"loaded"

    async def test_while_one_caller_refills_the_others_get_the_stale_copy_at_once(
        self, store: CacheStore, ns: str
    ) -> None:
        old = await store.put(ns, write("k", b"old", ttl_ms=100, swr_ms=2000))
        await asyncio.sleep(0.15)
        started = time.monotonic()
        lookups = await asyncio.gather(
            *(
                store.acquire_fill_lease(ns, "k", lease_ms=2000, wait_ms=1000)
                for _ in range(CALLERS)
            )
        )
        assert time.monotonic() - started < 0.5
        assert sum(lookup.lease is not None for lookup in lookups) == 1
        for lookup in lookups:
            assert lookup.entry is not None
            assert (lookup.entry.stale, lookup.entry.version) == (True, old.version)
        [lease] = [lookup.lease for lookup in lookups if lookup.lease is not None]
        fresh = await store.fill(ns, write("k", b"new", ttl_ms=1000), lease.token)
        read = await store.get(ns, "k")
        assert read is not None
        assert (read.value, read.version, read.stale) == (b"new", fresh.version, False)

    async def test_waiters_give_up_at_their_deadline_with_a_retry_hint(
        self, store: CacheStore, ns: str
    ) -> None:
        first = await store.acquire_fill_lease(ns, "k", lease_ms=1000)
        assert first.lease is not None
        started = time.monotonic()
        second = await store.acquire_fill_lease(ns, "k", lease_ms=1000, wait_ms=100)
        assert 0.09 < time.monotonic() - started < 0.5
        assert (second.entry, second.lease) == (None, None)
        assert 0 < second.retry_after_ms <= 1000

    async def test_a_lease_that_runs_out_passes_to_a_waiter(
        self, store: CacheStore, ns: str
    ) -> None:
        first = await store.acquire_fill_lease(ns, "k", lease_ms=100)
        second = await store.acquire_fill_lease(ns, "k", lease_ms=1000, wait_ms=1000)
        assert first.lease is not None
        assert second.lease is not None
        assert second.lease.token != first.lease.token
        with pytest.raises(Conflict, match="does not hold its fill lease"):
            await store.fill(ns, write("k", b"late"), first.lease.token)
        filled = await store.fill(ns, write("k", b"on time"), second.lease.token)
        assert filled.value == b"on time"
        read = await store.get(ns, "k")
        assert read is not None
        assert read.version == filled.version

    @pytest.mark.parametrize("change", ["put", "delete", "prefix"])
    async def test_a_write_or_delete_of_the_key_voids_its_lease(
        self, store: CacheStore, ns: str, change: str
    ) -> None:
        found = await store.acquire_fill_lease(ns, "k", lease_ms=1000)
        assert found.lease is not None
        if change == "put":
            await store.put(ns, write("k", b"newer"))
        elif change == "delete":
            await store.delete(ns, "k")
        else:
            await store.invalidate_prefix(ns, "k")
        with pytest.raises(Conflict, match="does not hold its fill lease"):
            await store.fill(ns, write("k", b"older"), found.lease.token)
        read = await store.get(ns, "k")
        assert read is None if change != "put" else read is not None and read.value == b"newer"

    async def test_only_the_lease_token_fills(self, store: CacheStore, ns: str) -> None:
        found = await store.acquire_fill_lease(ns, "k", lease_ms=1000)
        assert found.lease is not None
        with pytest.raises(Conflict):
            await store.fill(ns, write("k", b"v"), "not-the-lease")
        assert await store.get(ns, "k") is None
        await store.fill(ns, write("k", b"v"), found.lease.token)
        with pytest.raises(Conflict):
            await store.fill(ns, write("k", b"again"), found.lease.token)

    async def test_a_fill_is_refused_when_its_tag_changed_after_the_lease(
        self, store: CacheStore, ns: str
    ) -> None:
        stale = await store.acquire_fill_lease(ns, "k", lease_ms=1000)
        await asyncio.sleep(0.002)
        await store.invalidate_tags(None, ["stream:order-7"])
        await asyncio.sleep(0.002)
        fresh = await store.acquire_fill_lease(ns, "other", lease_ms=1000)
        assert stale.lease is not None
        assert fresh.lease is not None
        tags = frozenset({"stream:order-7"})
        with pytest.raises(Conflict, match="was invalidated after the fill lease"):
            await store.fill(ns, write("k", b"from before", tags=tags), stale.lease.token)
        assert await store.get(ns, "k") is None
        filled = await store.fill(ns, write("other", b"after", tags=tags), fresh.lease.token)
        assert [entry.version if entry else None for entry in await store.mget(ns, ["other"])] == [
            filled.version
        ]
