"""Invalidation from events: an event on stream S removes the entries tagged `stream:S`."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from outrigger.audit_trail import AuditTrail
from outrigger.bus import Ack, CloudEvent, Delivery, Retry, connect_bus
from outrigger.testing import unique
from outrigger.testing.broker import remove
from services.cache.adapters.memory import MemoryCacheStore
from services.cache.adapters.redis import RedisCacheStore
from services.cache.consumers import StreamInvalidation, subscribe_invalidations
from services.cache.domain import CacheStore, Write
from services.cache.metrics import CacheMetrics
from services.cache.service import CacheService
from tests.cache.http_support import CacheApi, Service, forget
from tests.cache.support import LIMITS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from outrigger.bus import MessageBus

EVENTS = "outrigger.events"


def stream_event(stream_id: str | None, **fields: Any) -> CloudEvent:
    return CloudEvent.new(
        source="tests/event-store", type="order.created", subject=stream_id, **fields
    )


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not done within {within} s"
        await asyncio.sleep(0.02)


def handler_on(store: CacheStore, bus: MessageBus) -> StreamInvalidation:
    return StreamInvalidation(CacheService(store, LIMITS, AuditTrail(bus, "cache"), CacheMetrics()))


def delivery(event: CloudEvent) -> Delivery:
    return Delivery(event, "cache.invalidations", EVENTS, "order.created", 1, {})


class TestInvalidationThroughTheService(CacheApi):
    async def test_an_event_on_a_stream_removes_its_tagged_entries_everywhere(
        self, service: Service, ns: str
    ) -> None:
        stream, other_ns = unique("order"), unique("ns")
        tag = f"stream:{stream}"
        await service.http.put(f"/v1/cache/{ns}/view", params={"tags": tag}, content=b"a")
        await service.http.put(f"/v1/cache/{other_ns}/list", params={"tags": tag}, content=b"b")
        await service.http.put(f"/v1/cache/{ns}/unrelated", params={"tags": "x"}, content=b"c")

        await service.bus.publish(EVENTS, "order.created", stream_event(stream))

        async def gone() -> bool:
            views = [
                await service.http.get(f"/v1/cache/{ns}/view"),
                await service.http.get(f"/v1/cache/{other_ns}/list"),
            ]
            return all(view.status_code == 404 for view in views)

        await eventually(gone)
        assert (await service.http.get(f"/v1/cache/{ns}/unrelated")).status_code == 200
        [record] = await service.audit.wait(1)
        assert record.routing_key == "cache.invalidate"
        assert record.event.data["data"]["removed"] == 2
        metrics = (await service.http.get("/metrics")).text
        assert "outrigger_cache_invalidation_lag_seconds_count" in metrics


class TestStreamInvalidation:
    @pytest.fixture
    async def store(self) -> CacheStore:
        store = MemoryCacheStore()
        await store.start()
        yield store
        await store.close()

    @pytest.fixture
    async def bus(self) -> MessageBus:
        bus = connect_bus(f"memory://{unique('bus')}", source="tests")
        await bus.start()
        yield bus
        await bus.close()

    async def test_the_same_event_twice_is_harmless_and_acked(
        self, store: CacheStore, bus: MessageBus
    ) -> None:
        ns, stream = unique("ns"), unique("s")
        await store.put(ns, Write("k", b"v", ttl_ms=60_000, tags=frozenset({f"stream:{stream}"})))
        handler = handler_on(store, bus)
        event = stream_event(stream)
        assert await handler(delivery(event)) == Ack()
        assert await handler(delivery(event)) == Ack()
        assert await store.get(ns, "k") is None

    async def test_events_that_name_no_usable_stream_are_acked_untouched(
        self, store: CacheStore, bus: MessageBus
    ) -> None:
        ns = unique("ns")
        await store.put(ns, Write("k", b"v", ttl_ms=60_000, tags=frozenset({"stream:s"})))
        handler = handler_on(store, bus)
        for event in (stream_event(None), stream_event("has space"), stream_event("x" * 300)):
            assert await handler(delivery(event)) == Ack()
        assert await store.get(ns, "k") is not None

    async def test_an_unavailable_store_asks_for_a_retry(self, bus: MessageBus) -> None:
        store = RedisCacheStore("redis://127.0.0.1:1/0", timeout_seconds=0.5)
        try:
            outcome = await handler_on(store, bus)(delivery(stream_event("s")))
        finally:
            await store.close()
        assert isinstance(outcome, Retry)
        assert "cache unavailable while invalidating 'stream:s'" in outcome.reason


@pytest.mark.redis
@pytest.mark.rabbitmq
async def test_end_to_end_on_rabbitmq_and_redis(redis_url: str, amqp_url: str) -> None:
    queue, prefix = unique("test.cache.invalidations"), unique("oc-consumer")
    store = RedisCacheStore(redis_url, key_prefix=prefix)
    bus = connect_bus(amqp_url, source="tests/cache")
    await bus.start()
    try:
        ns, stream = unique("ns"), unique("order")
        await store.put(
            ns, Write("view", b"v", ttl_ms=60_000, tags=frozenset({f"stream:{stream}"}))
        )
        cache = CacheService(store, LIMITS, AuditTrail(bus, "cache"), CacheMetrics())
        subscription = await subscribe_invalidations(bus, cache, queue=queue)
        await bus.publish(EVENTS, "order.created", stream_event(stream))

        async def gone() -> bool:
            return await store.get(ns, "view") is None

        await eventually(gone, within=15)
        await subscription.cancel()
    finally:
        await bus.close()
        await store.close()
        await forget(redis_url, prefix)
        await remove(amqp_url, [queue])
