"""The contract for invalidation: by tags (atomic, in one or every namespace) and by key prefix."""

from __future__ import annotations

import asyncio

from outrigger.testing import unique
from services.cache.domain import CacheStore
from tests.cache.support import CacheStoreSuite, write


class InvalidationContract(CacheStoreSuite):
    async def test_invalidating_tags_removes_exactly_their_entries(
        self, store: CacheStore, ns: str
    ) -> None:
        await store.mset(
            ns,
            [
                write("a", b"1", tags=frozenset({"stream:a"})),
                write("ab", b"2", tags=frozenset({"stream:a", "stream:b"})),
                write("b", b"3", tags=frozenset({"stream:b"})),
                write("c", b"4", tags=frozenset({"stream:c"})),
                write("none", b"5"),
            ],
        )
        assert await store.invalidate_tags(ns, ["stream:a", "stream:b"]) == 3
        found = await store.mget(ns, ["a", "ab", "b", "c", "none"])
        assert [entry is not None for entry in found] == [False, False, False, True, True]
        assert await store.invalidate_tags(ns, ["stream:a"]) == 0

    async def test_a_rewrite_without_a_tag_leaves_that_tag(
        self, store: CacheStore, ns: str
    ) -> None:
        await store.put(ns, write("k", b"1", tags=frozenset({"old"})))
        await store.put(ns, write("k", b"2", tags=frozenset({"new"})))
        assert await store.invalidate_tags(ns, ["old"]) == 0
        assert await store.get(ns, "k") is not None
        assert await store.invalidate_tags(ns, ["new"]) == 1
        assert await store.get(ns, "k") is None

    async def test_readers_never_see_a_tag_half_invalidated(
        self, store: CacheStore, ns: str
    ) -> None:
        keys = [f"k{i}" for i in range(300)]
        await store.mset(ns, [write(key, b"v", tags=frozenset({"t"})) for key in keys])
        seen: set[int] = set()
        done = asyncio.Event()

        async def read() -> None:
            while not done.is_set():
                found = await store.mget(ns, keys)
                seen.add(sum(entry is not None for entry in found))
                await asyncio.sleep(0)

        readers = [asyncio.create_task(read()) for _ in range(4)]
        await asyncio.sleep(0.02)
        assert await store.invalidate_tags(ns, ["t"]) == 300
        await asyncio.sleep(0.02)
        done.set()
        await asyncio.gather(*readers)
        assert seen == {0, 300}

    async def test_a_tag_is_invalidated_in_every_namespace(
        self, store: CacheStore, ns: str
    ) -> None:
        other = unique("other")
        tag = unique("stream:s")
        await store.put(ns, write("k", b"1", tags=frozenset({tag})))
        await store.put(other, write("k", b"2", tags=frozenset({tag})))
        await store.put(other, write("keep", b"3", tags=frozenset({"unrelated"})))
        assert await store.invalidate_tags(None, [tag]) == 2
        assert await store.get(ns, "k") is None
        assert await store.get(other, "k") is None
        assert await store.get(other, "keep") is not None

    async def test_prefix_invalidation_removes_the_keys_that_start_with_it(
        self, store: CacheStore, ns: str
    ) -> None:
        keys = ["user:1", "user:2", "user:10", "users", "*user", "team:1", "u[s]er", "u*"]
        await store.mset(ns, [write(key, b"v", tags=frozenset({"t"})) for key in keys])
        assert await store.invalidate_prefix(ns, "user:") == 3
        assert await store.invalidate_prefix(ns, "u*") == 1
        assert await store.invalidate_prefix(ns, "u[") == 1
        left = await store.mget(ns, keys)
        assert [key for key, entry in zip(keys, left, strict=True) if entry] == [
            "users",
            "*user",
            "team:1",
        ]
        assert await store.invalidate_tags(ns, ["t"]) == 3
        await store.put(ns, write("again", b"v"))
        assert await store.invalidate_prefix(ns, "") == 1
        assert await store.get(ns, "again") is None
