"""The contract for fenced locks: one holder at a time, fences that only grow, holder-only acts."""

from __future__ import annotations

import asyncio
import time

import pytest

from outrigger.errors import Conflict
from outrigger.testing import unique
from services.cache.domain import LockStore
from tests.cache.support import Ledger, LockStoreSuite


class LockStoreContract(LockStoreSuite):
    """The `LockStore` contract, written once; each adapter's test module subclasses it."""

    async def test_two_contenders_take_turns_with_growing_fences(
        self, locks: LockStore, resource: str
    ) -> None:
        first = await locks.acquire(resource, ttl_ms=5000)
        assert first.took_over is False
        with pytest.raises(Conflict, match="held by another holder") as held:
            await locks.acquire(resource, ttl_ms=5000)
        assert 4000 < held.value.extensions["retry_after_ms"] <= 5000
        await locks.release(resource, first.token)
        second = await locks.acquire(resource, ttl_ms=5000)
        assert second.fence > first.fence
        assert second.token != first.token
        assert second.took_over is False

    async def test_a_waiting_contender_gets_the_lock_once_it_is_released(
        self, locks: LockStore, resource: str
    ) -> None:
        first = await locks.acquire(resource, ttl_ms=5000)

        async def release_soon() -> None:
            await asyncio.sleep(0.1)
            await locks.release(resource, first.token)

        releaser = asyncio.create_task(release_soon())
        started = time.monotonic()
        second = await locks.acquire(resource, ttl_ms=5000, wait_ms=1000)
        assert 0.09 < time.monotonic() - started < 0.5
        assert second.fence > first.fence
        await releaser

    async def test_a_paused_holder_is_fenced_off_after_its_lease_runs_out(
        self, locks: LockStore, resource: str
    ) -> None:
        ledger = Ledger()
        paused = await locks.acquire(resource, ttl_ms=150)
        ledger.write(paused.fence, "first, on time")
        await asyncio.sleep(0.25)
        second = await locks.acquire(resource, ttl_ms=5000)
        assert second.fence > paused.fence
        assert second.took_over is True
        await locks.validate_fence(resource, second.fence)
        ledger.write(second.fence, "second")
        with pytest.raises(Conflict, match=f"fence {second.fence} was issued since"):
            await locks.validate_fence(resource, paused.fence)
        with pytest.raises(Conflict):
            ledger.write(paused.fence, "first, after waking up")
        assert ledger.writes == [(paused.fence, "first, on time"), (second.fence, "second")]
        with pytest.raises(Conflict, match="not held by this token"):
            await locks.renew(resource, paused.token, 5000)
        with pytest.raises(Conflict, match="not held by this token"):
            await locks.release(resource, paused.token)
        await locks.release(resource, second.token)
        third = await locks.acquire(resource, ttl_ms=5000)
        assert third.took_over is False

    async def test_renewing_keeps_the_lock_and_its_fence(
        self, locks: LockStore, resource: str
    ) -> None:
        lock = await locks.acquire(resource, ttl_ms=200)
        await asyncio.sleep(0.1)
        renewed = await locks.renew(resource, lock.token, 1000)
        assert (renewed.fence, renewed.token, renewed.ttl_ms) == (lock.fence, lock.token, 1000)
        await asyncio.sleep(0.2)
        with pytest.raises(Conflict):
            await locks.acquire(resource, ttl_ms=1000)
        await locks.validate_fence(resource, lock.fence)

    async def test_only_the_holder_token_renews_or_releases(
        self, locks: LockStore, resource: str
    ) -> None:
        lock = await locks.acquire(resource, ttl_ms=5000)
        with pytest.raises(Conflict, match="not held by this token"):
            await locks.renew(resource, "someone-else", 5000)
        with pytest.raises(Conflict, match="not held by this token"):
            await locks.release(resource, "someone-else")
        with pytest.raises(Conflict):
            await locks.acquire(resource, ttl_ms=5000)
        await locks.release(resource, lock.token)
        with pytest.raises(Conflict, match="not held by this token"):
            await locks.release(resource, lock.token)

    async def test_fences_only_grow(self, locks: LockStore, resource: str) -> None:
        fences = []
        for _ in range(5):
            lock = await locks.acquire(resource, ttl_ms=1000)
            fences.append(lock.fence)
            await locks.release(resource, lock.token)
        assert fences == sorted(set(fences))
        assert fences[-1] < 2**53
        with pytest.raises(Conflict, match="never issued"):
            await locks.validate_fence(resource, fences[-1] + 1)
        with pytest.raises(Conflict, match="never issued"):
            await locks.validate_fence(unique("never-locked"), 1)
