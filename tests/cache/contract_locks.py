"""The contract for fenced locks: one holder at a time, fences that only grow, holder-only acts."""

from __future__ import annotations

import asyncio
import time

import pytest

from outrigger.errors import Conflict, InvalidInput
from outrigger.testing import unique
from services.cache.domain import CacheStore
from tests.cache.support import Ledger, StoreFixtures


class LockContract(StoreFixtures):
    @pytest.fixture
    def resource(self) -> str:
        return unique("orders")

    async def test_two_contenders_take_turns_with_growing_fences(
        self, store: CacheStore, resource: str
    ) -> None:
        first = await store.acquire(resource, ttl_ms=5000)
        assert first.took_over is False
        with pytest.raises(Conflict, match="held by another holder") as held:
            await store.acquire(resource, ttl_ms=5000)
        assert 4000 < held.value.extensions["retry_after_ms"] <= 5000
        await store.release(resource, first.token)
        second = await store.acquire(resource, ttl_ms=5000)
        assert second.fence > first.fence
        assert second.token != first.token
        assert second.took_over is False

    async def test_a_waiting_contender_gets_the_lock_once_it_is_released(
        self, store: CacheStore, resource: str
    ) -> None:
        first = await store.acquire(resource, ttl_ms=5000)

        async def release_soon() -> None:
            await asyncio.sleep(0.1)
            await store.release(resource, first.token)

        releaser = asyncio.create_task(release_soon())
        started = time.monotonic()
        second = await store.acquire(resource, ttl_ms=5000, wait_ms=1000)
        assert 0.09 < time.monotonic() - started < 0.5
        assert second.fence > first.fence
        await releaser

    async def test_a_paused_holder_is_fenced_off_after_its_lease_runs_out(
        self, store: CacheStore, resource: str
    ) -> None:
        ledger = Ledger()
        paused = await store.acquire(resource, ttl_ms=150)
        ledger.write(paused.fence, "first, on time")
        await asyncio.sleep(0.25)
        second = await store.acquire(resource, ttl_ms=5000)
        assert second.fence > paused.fence
        assert second.took_over is True
        await store.validate_fence(resource, second.fence)
        ledger.write(second.fence, "second")
        with pytest.raises(Conflict, match=f"fence {second.fence} was issued since"):
            await store.validate_fence(resource, paused.fence)
        with pytest.raises(Conflict):
            ledger.write(paused.fence, "first, after waking up")
        assert ledger.writes == [(paused.fence, "first, on time"), (second.fence, "second")]
        with pytest.raises(Conflict, match="not held by this token"):
            await store.renew(resource, paused.token, 5000)
        with pytest.raises(Conflict, match="not held by this token"):
            await store.release(resource, paused.token)
        await store.release(resource, second.token)
        third = await store.acquire(resource, ttl_ms=5000)
        assert third.took_over is False

    async def test_renewing_keeps_the_lock_and_its_fence(
        self, store: CacheStore, resource: str
    ) -> None:
        lock = await store.acquire(resource, ttl_ms=200)
        await asyncio.sleep(0.1)
        renewed = await store.renew(resource, lock.token, 1000)
        assert (renewed.fence, renewed.token, renewed.ttl_ms) == (lock.fence, lock.token, 1000)
        await asyncio.sleep(0.2)
        with pytest.raises(Conflict):
            await store.acquire(resource, ttl_ms=1000)
        await store.validate_fence(resource, lock.fence)

    async def test_only_the_holder_token_renews_or_releases(
        self, store: CacheStore, resource: str
    ) -> None:
        lock = await store.acquire(resource, ttl_ms=5000)
        with pytest.raises(Conflict, match="not held by this token"):
            await store.renew(resource, "someone-else", 5000)
        with pytest.raises(Conflict, match="not held by this token"):
            await store.release(resource, "someone-else")
        with pytest.raises(Conflict):
            await store.acquire(resource, ttl_ms=5000)
        await store.release(resource, lock.token)
        with pytest.raises(Conflict, match="not held by this token"):
            await store.release(resource, lock.token)

    async def test_fences_only_grow(self, store: CacheStore, resource: str) -> None:
        fences = []
        for _ in range(5):
            lock = await store.acquire(resource, ttl_ms=1000)
            fences.append(lock.fence)
            await store.release(resource, lock.token)
        assert fences == sorted(set(fences))
        assert fences[-1] < 2**53
        with pytest.raises(Conflict, match="never issued"):
            await store.validate_fence(resource, fences[-1] + 1)
        with pytest.raises(Conflict, match="never issued"):
            await store.validate_fence(unique("never-locked"), 1)

    async def test_lock_arguments_are_checked(self, store: CacheStore) -> None:
        for bad in ("", "a/b", "a:renew", "x" * 201):
            with pytest.raises(InvalidInput, match="lock resource"):
                await store.acquire(bad, ttl_ms=1000)
        with pytest.raises(InvalidInput, match="ttl_ms"):
            await store.acquire("r", ttl_ms=0)
        with pytest.raises(InvalidInput, match="wait_ms"):
            await store.acquire("r", ttl_ms=10, wait_ms=-1)
        with pytest.raises(InvalidInput, match="ttl_ms"):
            await store.renew("r", "token", ttl_ms=3_600_001)
