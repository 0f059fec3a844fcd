"""The base of every contract suite: one class of tests per port, one subclass per adapter.

    class CacheContract(ContractSuite["CacheStore"]):      # the tests, written once
        async def test_get_after_put(self, adapter): ...

    class TestRedis(CacheContract):                         # one per adapter
        async def make_adapter(self, **options): return RedisStore(...)

(pyeventsourcing/eventsourcing's `tests/persistence.py` pattern.)
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import pytest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable


class Closable(Protocol):
    async def close(self) -> None: ...


A = TypeVar("A", bound=Closable)


class ContractSuite(abc.ABC, Generic[A]):
    """Subclasses build the adapter under test; the fixtures close whatever they built."""

    @abc.abstractmethod
    async def make_adapter(self, **options: Any) -> A:
        """A ready adapter of this subclass's kind (`options` are the suite's, per test)."""

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
                await adapter.close()
            await self.forget()

    @pytest.fixture
    async def adapter(self, new_adapter: Callable[..., Awaitable[A]]) -> A:
        return await new_adapter()
