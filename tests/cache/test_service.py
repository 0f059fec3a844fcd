"""The use-case room: every rule applied once, before the store; metrics counted; audits sent.

The stores trust their input, so a request the room let through would be stored: each refusal
below is also checked to have stored nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from outrigger.audit_trail import AuditTrail
from outrigger.bus import CloudEvent, connect_bus
from outrigger.errors import InvalidInput, PreconditionFailed, TooLarge
from outrigger.testing import AuditInbox, audit_inbox, unique
from services.cache.adapters.memory import MemoryCacheStore
from services.cache.adapters.memory_locks import MemoryLocks
from services.cache.domain import (
    IF_NONE_MATCH_ANY,
    MAX_KEY_LENGTH,
    CacheLimits,
    TtlPolicy,
    Write,
    if_match,
)
from services.cache.metrics import CacheMetrics
from services.cache.service import CacheService, LockService
from tests.cache.support import LIMITS, MAX_VALUE_BYTES

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from outrigger.bus import MessageBus


@pytest.fixture
async def bus() -> AsyncIterator[MessageBus]:
    bus = connect_bus(f"memory://{unique('bus')}", source="tests")
    await bus.start()
    yield bus
    await bus.close()


@pytest.fixture
async def audit(bus: MessageBus) -> AuditInbox:
    return await audit_inbox(bus, "cache")


@pytest.fixture
async def store() -> AsyncIterator[MemoryCacheStore]:
    store = MemoryCacheStore()
    await store.start()
    yield store
    await store.close()


def service_on(
    store: MemoryCacheStore, bus: MessageBus, limits: CacheLimits = LIMITS
) -> CacheService:
    return CacheService(store, limits, AuditTrail(bus, "cache"), CacheMetrics())


@pytest.fixture
def cache(store: MemoryCacheStore, bus: MessageBus) -> CacheService:
    return service_on(store, bus)


@pytest.fixture
def ns() -> str:
    return unique("ns")


async def test_bad_writes_are_refused_before_the_store_and_say_why(
    cache: CacheService, store: MemoryCacheStore, ns: str
) -> None:
    refused = [
        ("Bad Namespace", Write("k", b"v"), "must be 1-64 characters of a-z, 0-9, _ and -"),
        (ns, Write("k" * (MAX_KEY_LENGTH + 1), b"v"), "is 513 characters"),
        (ns, Write("line\nfeed", b"v"), "holds a line feed"),
        (ns, Write("", b"v"), "is 0 characters"),
        (ns, Write("k", b"v", tags=frozenset({"a,b"})), "tag 'a,b' must be"),
        (ns, Write("k", b"v", tags=frozenset(f"t{i}" for i in range(33))), "at most 32 tags"),
        (ns, Write("k", b"v", content_type="json"), "is not type/subtype"),
        (ns, Write("k", b"v", ttl_ms=3_600_001), "ttl 3600001 ms is outside 1-3600000"),
        (ns, Write("k", b"v", swr_ms=3_600_001), "stale window 3600001 ms is outside"),
    ]
    for namespace, write, says in refused:
        with pytest.raises(InvalidInput, match=says) as refusal:
            await cache.write(namespace, write)
        assert refusal.value.status == 422
    assert store._entries == {}


async def test_keys_are_counted_in_characters(cache: CacheService, ns: str) -> None:
    longest = "é" * MAX_KEY_LENGTH  # 1,024 bytes of UTF-8
    assert (await cache.write(ns, Write(longest, b"fits"))).key == longest
    entry = await cache.read(ns, longest)
    assert entry is not None
    assert entry.value == b"fits"


async def test_a_value_over_the_limit_is_too_large(
    cache: CacheService, store: MemoryCacheStore, ns: str
) -> None:
    with pytest.raises(TooLarge, match="at most 1,024 bytes") as refusal:
        await cache.write(ns, Write("k", b"x" * (MAX_VALUE_BYTES + 1)))
    assert refusal.value.extensions["max_value_bytes"] == MAX_VALUE_BYTES
    assert store._entries == {}


async def test_the_namespace_sets_the_default_and_the_maximum_ttl(
    store: MemoryCacheStore, bus: MessageBus, ns: str
) -> None:
    cache = service_on(store, bus, replace(LIMITS, namespaces={ns: TtlPolicy(250, 1000)}))
    assert (await cache.write(ns, Write("k", b"v"))).ttl_ms == 250
    assert (await cache.write(unique("other"), Write("k", b"v"))).ttl_ms == 60_000
    with pytest.raises(InvalidInput, match="outside 1-1000 ms allowed in namespace"):
        await cache.write(ns, Write("k", b"other", ttl_ms=1001))
    entry = await cache.read(ns, "k")
    assert entry is not None
    assert entry.value == b"v"


async def test_batches_are_bounded_distinct_and_all_or_nothing(
    cache: CacheService, store: MemoryCacheStore, ns: str
) -> None:
    with pytest.raises(InvalidInput, match="1-1,000 keys"):
        await cache.read_many(ns, [f"k{i}" for i in range(1001)])
    with pytest.raises(InvalidInput, match="1-1,000 keys"):
        await cache.write_many(ns, [])
    with pytest.raises(InvalidInput, match="twice"):
        await cache.write_many(ns, [Write("a", b"1"), Write("a", b"2")])
    with pytest.raises(TooLarge):
        await cache.write_many(ns, [Write("ok", b"1"), Write("big", b"x" * (MAX_VALUE_BYTES + 1))])
    with pytest.raises(TooLarge, match="batch holds"):
        await cache.write_many(ns, [Write(f"k{i}", b"x" * MAX_VALUE_BYTES) for i in range(9)])
    with pytest.raises(InvalidInput, match="tag"):
        await cache.write_many(ns, [Write("ok", b"1"), Write("bad", b"2", tags=frozenset({""}))])
    assert store._entries == {}


async def test_a_fill_is_a_write_to_a_key_with_no_fresh_entry(cache: CacheService, ns: str) -> None:
    lease = (await cache.read_or_lease(ns, "k", lease_ms=1000, wait_ms=0)).lease
    assert lease is not None
    with pytest.raises(PreconditionFailed, match="has no fresh entry"):
        await cache.write(ns, Write("k", b"v"), if_match("v1"), fill_lease=lease.token)
    filled = await cache.write(ns, Write("k", b"v"), IF_NONE_MATCH_ANY, fill_lease=lease.token)
    assert filled.value == b"v"


async def test_conditions_that_make_no_sense_are_refused(
    cache: CacheService, store: MemoryCacheStore, ns: str
) -> None:
    await cache.write(ns, Write("k", b"v"))
    with pytest.raises(InvalidInput, match="takes If-Match, not If-None-Match"):
        await cache.delete(ns, "k", IF_NONE_MATCH_ANY, actor="tester")
    assert await cache.read(ns, "k") is not None


async def test_invalidations_need_a_tag_or_a_prefix_a_key_could_have(
    cache: CacheService, ns: str, audit: AuditInbox
) -> None:
    await cache.write(ns, Write("k", b"v", tags=frozenset({"t"})))
    for tags, prefix, says in [
        ([], None, "at least one tag"),
        (["a b"], None, "tag 'a b' must be"),
        (None, "line\nfeed", "holds a line feed"),
    ]:
        with pytest.raises(InvalidInput, match=says):
            await cache.invalidate(ns, tags=tags, prefix=prefix, actor="tester")
    assert await cache.read(ns, "k") is not None
    assert await cache.invalidate(ns, tags=["t", "t"], actor="tester") == 1
    [record] = await audit.wait(1)
    assert record.event.data["data"] == {"removed": 1, "tags": ["t"]}


async def test_lock_resources_are_checked(bus: MessageBus) -> None:
    locks = LockService(MemoryLocks(), AuditTrail(bus, "cache"), CacheMetrics())
    for bad in ("", "a/b", "a:renew", "x" * 201):
        with pytest.raises(InvalidInput, match="lock resource"):
            await locks.acquire(bad, 1000, 0, actor="tester")
    assert (await locks.acquire("a.b-c_d", 1000, 0, actor="tester")).fence > 0


async def test_an_event_invalidates_its_stream_tag_everywhere_and_is_audited_once(
    cache: CacheService, audit: AuditInbox
) -> None:
    stream = unique("order")
    tagged = frozenset({f"stream:{stream}"})
    await cache.write(unique("a"), Write("k", b"v", tags=tagged))
    await cache.write(unique("b"), Write("k", b"v", tags=tagged))
    event = CloudEvent.new(source="tests/event-store", type="order.created", subject=stream)
    assert await cache.invalidate_stream(event) == 2
    assert await cache.invalidate_stream(event) == 0
    [record] = await audit.wait(1)
    assert record.routing_key == "cache.invalidate"
    assert record.event.data["actor"] == "cache"
    assert record.event.data["data"]["event_id"] == event.id
    for subject in (None, "has space", "x" * 300):
        nothing = CloudEvent.new(source="tests", type="t", subject=subject)
        assert await cache.invalidate_stream(nothing) == 0
