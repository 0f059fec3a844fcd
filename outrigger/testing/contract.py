"""The base of every contract suite: one class of tests per port, one subclass per adapter.

    class CacheContract(ContractSuite["CacheStore"]):      # the tests, written once
        async def test_get_after_put(self, adapter): ...

    class TestRedis(CacheContract):                         # one per adapter
        @pytest.fixture(autouse=True)
        def _server(self, redis_url): self.url = redis_url  # what the hooks need, per test
        async def make_adapter(self, **options): return RedisStore(self.url, ...)

(pyeventsourcing/eventsourcing's `tests/persistence.py` pattern.)
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pytest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

A = TypeVar("A")


class ContractSuite(abc.ABC, Generic[A]):
    """Subclasses build the adapter under test; the fixtures close whatever they built.

    A subclass that needs a server gets it from an autouse fixture of its own that keeps what
    the hooks need on `self` (its URL, a key prefix of its own): it runs before the adapters are
    built, and its teardown after they are closed.
    """

    @abc.abstractmethod
    async def make_adapter(self, **options: Any) -> A:
        """A ready adapter of this subclass's kind (`options` are the suite's, per test)."""

    async def close_adapter(self, adapter: A) -> None:
        """Ends an adapter the suite built: `await adapter.close()` if it has that method."""
        close = getattr(adapter, "close", None)
        if close is not None:
            await close()

    async def forget(self) -> None:
        """Removes what the test left on a shared server (a key prefix, say); default nothing."""

    @pytest.fixture
    async def new_adapter(self) -> AsyncIterator[Callable[..., Awaitable[A]]]:
        """Builds adapters on demand (several per test when it needs them); all closed after."""
        built: list[A] = []

        async def new(**options: Any) -> A:
            adapter = await self.make_adapter(**options)
            built.append(adapter)
            return adapter

        try:
            yield new
        finally:
            for adapter in reversed(built):
                await self.close_adapter(adapter)
            await self.forget()

    @pytest.fixture
    async def adapter(self, new_adapter: Callable[..., Awaitable[A]]) -> A:
        return await new_adapter()
