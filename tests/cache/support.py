"""What every part of the cache contract suite shares: the adapter hook, fixtures and helpers."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, TypeAlias

import pytest

from outrigger.errors import Conflict
from outrigger.testing import unique
from services.cache.domain import CacheLimits, TtlPolicy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from services.cache.domain import CacheStore

MAX_VALUE_BYTES = 1024
LIMITS = CacheLimits(
    max_value_bytes=MAX_VALUE_BYTES,
    max_batch_bytes=8 * MAX_VALUE_BYTES,
    ttl=TtlPolicy(default_ms=60_000, max_ms=3_600_000),
)

NewStore: TypeAlias = "Callable[..., Awaitable[CacheStore]]"


class StoreFixtures(abc.ABC):
    """The hook a subclass provides, and the fixtures built on it.

    `store_url` is a fixture of the subclass; `make_store(url, limits)` builds an adapter that
    `start()` has not been called on; `forget(url)` removes whatever the test left behind.
    """

    @abc.abstractmethod
    def make_store(self, url: str, limits: CacheLimits) -> CacheStore:
        """Each adapter's subclass builds its own."""

    async def forget(self, url: str) -> None:
        return None

    @pytest.fixture
    async def new_store(self, store_url: str) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
        stores: list[CacheStore] = []

        async def new(limits: CacheLimits = LIMITS) -> CacheStore:
            store = self.make_store(store_url, limits)
            stores.append(store)
            await store.start()
            return store

        yield new
        for store in reversed(stores):
            await store.close()
        await self.forget(store_url)

    @pytest.fixture
    async def store(self, new_store: Callable[..., Awaitable[CacheStore]]) -> CacheStore:
        return await new_store()

    @pytest.fixture
    def ns(self) -> str:
        """A namespace no other test (or engineer) uses."""
        return unique("ns")


class Ledger:
    """A downstream resource guarded by a lock, applying the fencing rule the port documents:
    keep the highest fence accepted, refuse any write with a lower one, in the same step."""

    def __init__(self) -> None:
        self.highest = 0
        self.writes: list[tuple[int, str]] = []

    def write(self, fence: int, value: str) -> None:
        if fence < self.highest:
            raise Conflict(f"fence {fence} is below {self.highest}")
        self.highest = fence
        self.writes.append((fence, value))
