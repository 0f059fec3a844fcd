"""What the cache's contract suites share: one suite base per port (on the kit's
`ContractSuite`), the writes they store, and a downstream resource guarded by a lock."""

from __future__ import annotations

from typing import Any

import pytest

from outrigger.errors import Conflict
from outrigger.testing import ContractSuite, unique
from services.cache.domain import CacheLimits, CacheStore, LockStore, TtlPolicy, Write

MAX_VALUE_BYTES = 1024
LIMITS = CacheLimits(
    max_value_bytes=MAX_VALUE_BYTES,
    max_batch_bytes=8 * MAX_VALUE_BYTES,
    ttl=TtlPolicy(default_ms=60_000, max_ms=3_600_000),
)


def write(key: str, value: bytes = b"v", **fields: Any) -> Write:
    """A write as the use-case room hands it to a store: its TTL resolved (a minute unless
    `ttl_ms` says otherwise)."""
    return Write(key, value, **{"ttl_ms": 60_000, **fields})


class CacheStoreSuite(ContractSuite[CacheStore]):
    """The `CacheStore` suites' base: `store` is a started adapter, `ns` a namespace of its own."""

    @pytest.fixture
    def store(self, adapter: CacheStore) -> CacheStore:
        return adapter

    @pytest.fixture
    def ns(self) -> str:
        """A namespace no other test (or engineer) uses."""
        return unique("ns")


class LockStoreSuite(ContractSuite[LockStore]):
    """The `LockStore` suite's base: `locks` is the adapter, `resource` a lock of its own."""

    @pytest.fixture
    def locks(self, adapter: LockStore) -> LockStore:
        return adapter

    @pytest.fixture
    def resource(self) -> str:
        return unique("orders")


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
