"""What `CacheClient` returns: the cache's answers as dataclasses.

`StoredEntry`, `HeldLock` and `FoundEntry` match the JSON schemas of the same names in the
service's OpenAPI document field for field; `CachedValue` is an entry as read, from the raw
bytes of a read and its headers (or from an mget); `LockLease` is a lock held by `lock()`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime  # noqa: TC003 (pydantic reads the annotations at runtime)
from typing import Literal

from outrigger.errors import Conflict


@dataclass(frozen=True, slots=True)
class CachedValue:
    """An entry as read: its bytes, Content-Type, version (the ETag unquoted), the whole
    seconds of freshness left, its tags, and whether it is a stale copy (`lookup` only)."""

    key: str
    value: bytes
    content_type: str
    version: str
    max_age: int
    tags: frozenset[str] = frozenset()
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Lookup:
    """A `fill=lease` read: the value (maybe stale), and `lease_token` when this caller must
    fill the key (`put(..., fill_lease=token)`), or `retry_after_ms` while another caller does."""

    value: CachedValue | None
    lease_token: str | None = None
    retry_after_ms: int = 0


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """What a write stored: the new version (the ETag unquoted), the size of the value in
    bytes, the TTL and stale-while-revalidate window resolved, the tags, when."""

    key: str
    version: str
    content_type: str
    size: int
    ttl_ms: int
    swr_ms: int
    tags: tuple[str, ...]
    created: datetime


@dataclass(frozen=True, slots=True)
class FoundEntry:
    """One key of an mget as the service answers it: `found` False and nothing else on a miss.
    `CacheClient.mget` turns the hits into `CachedValue`s."""

    key: str
    found: bool
    value: str | None = None
    encoding: Literal["utf-8", "base64"] | None = None
    content_type: str | None = None
    version: str | None = None
    ttl_ms: int | None = None
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class HeldLock:
    """A lock as acquired or renewed: `token` renews and releases it; `fence` grows with every
    acquire of the resource, so a downstream that keeps the highest fence it has seen can
    refuse a write from a holder whose lease ran out."""

    resource: str
    token: str
    fence: int
    ttl_ms: int


class LockLost(Conflict):
    """The lock's lease ran out or was taken by another holder before the block ended."""


@dataclass(eq=False)
class LockLease:
    """A lock held by `CacheClient.lock`. `lost` is set as soon as the client knows the lease
    is gone, `lost_because` says why."""

    resource: str
    token: str
    fence: int
    ttl_ms: int
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    lost_because: str = ""

    def lose(self, because: str) -> None:
        if not self.lost.is_set():
            self.lost_because = because
            self.lost.set()
