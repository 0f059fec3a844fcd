"""`CacheClient`, the Python SDK of the cache, against the service built inline."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest

from outrigger.clients import CacheClient, HeldLock, SyncCacheClient
from outrigger.clients.cache import LockLost
from outrigger.errors import Conflict, PreconditionFailed
from outrigger.resilience import Policy
from outrigger.testing import bearer, serving, unique
from services.cache.app import build_app
from tests.cache.http_support import ALL, CacheApi, Service, cache_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable


class Partition(httpx.AsyncBaseTransport):
    """Passes requests to the app, except those `cut` says the network drops."""

    def __init__(self, app: object, cut: Callable[[httpx.Request], bool]) -> None:
        self.inner = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        self.cut = cut
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down and self.cut(request):
            raise httpx.ConnectError("network partition", request=request)
        return await self.inner.handle_async_request(request)


def client(service: Service, transport: httpx.AsyncBaseTransport | None = None) -> CacheClient:
    token = bearer(service.settings, *ALL)["Authorization"].removeprefix("Bearer ")
    return CacheClient(
        "http://cache",
        token=token,
        policy=Policy(unique("cache")),
        transport=transport or httpx.ASGITransport(app=service.app),
    )


class TestCacheClient(CacheApi):
    @pytest.fixture
    async def cache(self, service: Service) -> AsyncIterator[CacheClient]:
        async with client(service) as cache:
            yield cache

    async def test_entries_round_trip_with_their_conditions(
        self, cache: CacheClient, ns: str
    ) -> None:
        stored = await cache.put(ns, "a/b?c", b"\x00bytes", ttl=30, tags=["stream:s", "t"])
        assert (stored.key, stored.size, stored.ttl_ms, stored.swr_ms) == ("a/b?c", 6, 30_000, 0)
        assert (stored.content_type, stored.tags) == ("application/octet-stream", ("stream:s", "t"))
        assert abs(datetime.now(UTC) - stored.created) < timedelta(minutes=1)
        version = stored.version
        found = await cache.get(ns, "a/b?c")
        assert found is not None
        assert (found.value, found.version) == (b"\x00bytes", version)
        assert found.tags == {"stream:s", "t"}
        assert 29 <= found.max_age <= 30
        await cache.put(ns, "..", "text")
        text = await cache.get(ns, "..")
        assert text is not None
        assert (text.value, text.content_type) == (b"text", "text/plain; charset=utf-8")
        with pytest.raises(PreconditionFailed) as stale:
            await cache.put(ns, "a/b?c", b"x", if_match="not-the-version")
        assert stale.value.extensions["current_version"] == version
        with pytest.raises(PreconditionFailed):
            await cache.put(ns, "a/b?c", b"x", if_absent=True)
        assert (await cache.put(ns, "a/b?c", b"y", if_match=version)).version != version
        assert await cache.delete(ns, "a/b?c") is True
        assert await cache.delete(ns, "a/b?c") is False
        assert await cache.get(ns, "a/b?c") is None

    async def test_batches_invalidation_and_fill_leases(self, cache: CacheClient, ns: str) -> None:
        stored = await cache.mset(ns, {"a": b"1", "b": "2"}, tags=["t"])
        assert {key: (entry.key, entry.tags) for key, entry in stored.items()} == {
            "a": ("a", ("t",)),
            "b": ("b", ("t",)),
        }
        found = await cache.mget(ns, ["a", "b", "missing"])
        assert {key: value.value for key, value in found.items()} == {"a": b"1", "b": b"2"}
        assert found["b"].content_type == "text/plain; charset=utf-8"
        assert found["a"].version == stored["a"].version
        assert await cache.invalidate(ns, tags=["t"]) == 2
        assert await cache.invalidate(ns, prefix="") == 0

        first = await cache.lookup(ns, "k")
        assert first.value is None
        assert first.lease_token is not None
        second = await cache.lookup(ns, "k")
        assert (second.lease_token, second.value) == (None, None)
        assert second.retry_after_ms > 0
        await cache.put(ns, "k", b"filled", fill_lease=first.lease_token)
        third = await cache.lookup(ns, "k")
        assert third.value is not None
        assert third.value.value == b"filled"

    async def test_a_lock_taken_renewed_checked_and_released_one_step_at_a_time(
        self, cache: CacheClient
    ) -> None:
        resource = unique("job")
        held = await cache.acquire(resource, ttl_ms=5000)
        assert (held.resource, held.ttl_ms) == (resource, 5000)
        with pytest.raises(Conflict) as busy:
            await cache.acquire(resource, ttl_ms=5000)
        assert "Retry-After" in busy.value.headers
        renewed = await cache.renew(resource, held.token, ttl_ms=8000)
        assert renewed == HeldLock(resource, held.token, held.fence, 8000)
        with pytest.raises(Conflict):
            await cache.renew(resource, "not-the-token", ttl_ms=8000)
        assert await cache.validate_fence(resource, held.fence) is True
        await cache.release(resource, held.token)
        with pytest.raises(Conflict):
            await cache.release(resource, held.token)
        later = await cache.acquire(resource, ttl_ms=1000)
        assert later.fence > held.fence
        assert await cache.validate_fence(resource, held.fence) is False

    async def test_a_held_lock_is_renewed_in_the_background_and_released(
        self, cache: CacheClient, service: Service
    ) -> None:
        resource = unique("job")
        async with cache.lock(resource, ttl_ms=300) as lease:
            await asyncio.sleep(1.0)  # three lease lengths: only renewals keep it
            with pytest.raises(Conflict):
                async with cache.lock(resource, ttl_ms=300):
                    pass
            assert not lease.lost.is_set()
        async with cache.lock(resource, ttl_ms=300) as next_lease:
            assert next_lease.fence > lease.fence

    async def test_a_lock_taken_by_another_holder_is_reported_lost(
        self, cache: CacheClient, service: Service
    ) -> None:
        resource = unique("job")
        store = service.app.state.locks.locks
        with pytest.raises(LockLost, match="another holder took the lock"):
            async with cache.lock(resource, ttl_ms=300) as lease:
                await store.release(resource, lease.token)  # as if its lease had run out
                taker = await store.acquire(resource, 5000)
                await asyncio.wait_for(lease.lost.wait(), timeout=1.0)
        assert taker.fence > lease.fence

    async def test_a_holder_cut_off_from_the_service_learns_its_lease_ran_out(
        self, service: Service
    ) -> None:
        partition = Partition(service.app, lambda request: request.url.path.endswith(":renew"))
        async with client(service, partition) as cache:
            with pytest.raises(LockLost, match="no renewal succeeded"):
                async with cache.lock(unique("job"), ttl_ms=300) as lease:
                    partition.down = True
                    started = time.monotonic()
                    await asyncio.wait_for(lease.lost.wait(), timeout=2.0)
                    assert time.monotonic() - started < 0.6  # the lease (300 ms), not later

    async def test_an_error_in_the_block_propagates_and_the_lock_is_released(
        self, cache: CacheClient
    ) -> None:
        resource = unique("job")
        with pytest.raises(ZeroDivisionError):
            async with cache.lock(resource, ttl_ms=5000):
                _ = 1 / 0
        async with cache.lock(resource, ttl_ms=5000) as lease:
            assert not lease.lost.is_set()


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, str]]:
    """The cache (in memory) served by uvicorn: its URL and a token with every scope."""
    settings = cache_settings("memory://")
    token = bearer(settings, *ALL)["Authorization"].removeprefix("Bearer ")
    async with serving(build_app(settings)) as url:
        yield url, token


async def test_waiting_for_a_lock_longer_than_the_client_timeout_still_gets_it(
    served: tuple[str, str],
) -> None:
    url, token = served
    resource = unique("job")
    async with (
        CacheClient(url, token=token, policy=Policy(unique("holder"))) as holder,
        CacheClient(url, token=token, policy=Policy(unique("waiter")), timeout=0.3) as waiter,
    ):
        held = await holder.acquire(resource, ttl_ms=5000)
        waiting = asyncio.create_task(waiter.acquire(resource, ttl_ms=5000, wait_ms=3000))
        await asyncio.sleep(0.8)  # well past the waiter's read timeout
        await holder.release(resource, held.token)
        taken = await asyncio.wait_for(waiting, 5)
    assert taken.fence > held.fence


async def test_the_blocking_client_from_a_script(served: tuple[str, str]) -> None:
    url, token = served
    ns, resource = unique("ns"), unique("job")

    def script() -> None:
        with SyncCacheClient(url, token=token, policy=Policy(unique("script"))) as cache:
            stored = cache.put(ns, "k", "v", ttl=60, tags=["t"])
            found = cache.get(ns, "k")
            assert found is not None
            assert (found.value, found.version) == (b"v", stored.version)
            assert set(cache.mget(ns, ["k", "missing"])) == {"k"}
            assert cache.invalidate(ns, tags=["t"]) == 1
            assert cache.get(ns, "k") is None
            assert cache.delete(ns, "k") is False

            with cache.lock(resource, ttl_ms=300) as lease:
                time.sleep(1.0)  # three leases: the loop thread renews it meanwhile
                with pytest.raises(Conflict):
                    cache.acquire(resource, ttl_ms=300)
                assert not lease.lost.is_set()
            with pytest.raises(ZeroDivisionError), cache.lock(resource, ttl_ms=5000):
                _ = 1 / 0
            again = cache.acquire(resource, ttl_ms=5000)  # released by both blocks
            assert again.fence > lease.fence

            taken = resource + "-taken"
            with pytest.raises(LockLost, match="another holder took the lock"):  # noqa: SIM117
                with cache.lock(taken, ttl_ms=300) as lost:
                    cache.release(taken, lost.token)  # as if its lease had run out
                    cache.acquire(taken, ttl_ms=5000)
                    deadline = time.monotonic() + 2
                    while not lost.lost.is_set() and time.monotonic() < deadline:
                        time.sleep(0.02)

    await asyncio.to_thread(script)
