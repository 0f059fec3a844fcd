"""The contract for entries: TTLs, versions and conditions, batches, stale windows."""

from __future__ import annotations

import asyncio

import pytest

from outrigger.errors import PreconditionFailed
from services.cache.domain import IF_NONE_MATCH_ANY, CacheStore, if_match
from tests.cache.support import CacheStoreSuite, write


class EntryContract(CacheStoreSuite):
    async def test_a_put_is_read_back_with_its_type_version_and_tags(
        self, store: CacheStore, ns: str
    ) -> None:
        tags = frozenset({"stream:order-7", "users"})
        stored = write("k", b"\x00body", content_type="application/json", ttl_ms=5000, tags=tags)
        written = await store.put(ns, stored)
        read = await store.get(ns, "k")
        assert read is not None
        assert (read.value, read.content_type, read.tags) == (b"\x00body", "application/json", tags)
        assert read.version == written.version
        assert read.etag == f'"{written.version}"'
        assert 4000 < read.ttl_ms <= 5000
        assert read.max_age in (4, 5)
        assert not read.stale
        assert read.created.tzinfo is not None
        assert await store.get(ns, "absent") is None

    async def test_every_write_gets_a_new_version(self, store: CacheStore, ns: str) -> None:
        versions = {(await store.put(ns, write("k", b"same"))).version for _ in range(5)}
        assert len(versions) == 5

    async def test_an_entry_expires_after_its_ttl(self, store: CacheStore, ns: str) -> None:
        await store.put(ns, write("k", b"v", ttl_ms=200))
        assert await store.get(ns, "k") is not None
        await asyncio.sleep(0.3)
        assert await store.get(ns, "k") is None
        assert await store.get(ns, "k", allow_stale=True) is None
        assert await store.mget(ns, ["k"]) == [None]

    async def test_if_match_writes_only_over_the_current_version(
        self, store: CacheStore, ns: str
    ) -> None:
        first = await store.put(ns, write("k", b"1"))
        second = await store.put(ns, write("k", b"2"), if_match(first.version))
        with pytest.raises(PreconditionFailed) as refused:
            await store.put(ns, write("k", b"3"), if_match(first.version))
        assert refused.value.extensions["current_version"] == second.version
        read = await store.get(ns, "k")
        assert read is not None
        assert (read.value, read.version) == (b"2", second.version)
        with pytest.raises(PreconditionFailed, match="has no fresh entry"):
            await store.put(ns, write("absent", b"x"), if_match(first.version))
        assert await store.get(ns, "absent") is None

    async def test_if_none_match_any_writes_only_when_absent(
        self, store: CacheStore, ns: str
    ) -> None:
        first = await store.put(ns, write("k", b"1", ttl_ms=200), IF_NONE_MATCH_ANY)
        with pytest.raises(PreconditionFailed) as refused:
            await store.put(ns, write("k", b"2"), IF_NONE_MATCH_ANY)
        assert refused.value.extensions["current_version"] == first.version
        assert (await store.get(ns, "k")).value == b"1"
        await asyncio.sleep(0.3)
        assert (await store.put(ns, write("k", b"3"), IF_NONE_MATCH_ANY)).value == b"3"

    async def test_conditions_treat_a_stale_entry_as_absent(
        self, store: CacheStore, ns: str
    ) -> None:
        stale = await store.put(ns, write("k", b"old", ttl_ms=100, swr_ms=1000))
        await asyncio.sleep(0.15)
        with pytest.raises(PreconditionFailed):
            await store.put(ns, write("k", b"x"), if_match(stale.version))
        assert (await store.put(ns, write("k", b"new"), IF_NONE_MATCH_ANY)).value == b"new"

    async def test_delete_removes_the_entry_conditionally(self, store: CacheStore, ns: str) -> None:
        entry = await store.put(ns, write("k", b"v"))
        with pytest.raises(PreconditionFailed):
            await store.delete(ns, "k", if_match("another-version"))
        assert await store.get(ns, "k") is not None
        assert await store.delete(ns, "k", if_match(entry.version)) is True
        assert await store.get(ns, "k") is None
        assert await store.delete(ns, "k") is False

    async def test_mget_answers_in_order_with_none_for_misses(
        self, store: CacheStore, ns: str
    ) -> None:
        written = await store.mset(ns, [write(f"k{i}", str(i).encode()) for i in range(1000)])
        assert len({entry.version for entry in written}) == 1000
        keys = ["k999", "missing", "k0", "k500"]
        found = await store.mget(ns, keys)
        assert [entry.value if entry else None for entry in found] == [b"999", None, b"0", b"500"]
        assert found[0] is not None
        assert found[0].version == written[999].version

    async def test_a_stale_entry_is_served_only_to_who_accepts_it(
        self, store: CacheStore, ns: str
    ) -> None:
        written = await store.put(ns, write("k", b"v", ttl_ms=150, swr_ms=600))
        await asyncio.sleep(0.25)
        assert await store.get(ns, "k") is None
        assert await store.mget(ns, ["k"]) == [None]
        stale = await store.get(ns, "k", allow_stale=True)
        assert stale is not None
        assert (stale.stale, stale.ttl_ms, stale.version) == (True, 0, written.version)
        await asyncio.sleep(0.6)
        assert await store.get(ns, "k", allow_stale=True) is None
