"""What the cache stores and hands back: writes, entries, conditions, fill leases and locks.

Versions (ETags) are random 96-bit tokens, new on every write, rather than a per-key counter:
ETags are only ever compared for equality (`If-Match`, `If-None-Match`), and a random token stays
unique when a key is deleted and written again, when Redis restarts empty or fails over to a
replica that missed writes, cases where a counter would hand out an old number again (ABA) and let
a stale `If-Match` succeed. It also needs no extra key per entry. Times are milliseconds.
"""

from __future__ import annotations

import secrets
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

DEFAULT_CONTENT_TYPE = "application/octet-stream"


def new_token() -> str:
    """A fresh random token (96 bits, 24 hex digits) for versions, fill leases and locks."""
    return secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class Write:
    """A value to store. `ttl_ms` None takes the namespace default; `swr_ms` is the stale window.

    After `ttl_ms` the entry is stale: plain reads miss, but for `swr_ms` more it is kept and
    handed to callers that accept stale data (fill-lease lookups, `get(allow_stale=True)`).
    """

    key: str
    value: bytes
    _: KW_ONLY
    content_type: str = DEFAULT_CONTENT_TYPE
    ttl_ms: int | None = None
    tags: frozenset[str] = frozenset()
    swr_ms: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored value as read. `ttl_ms` is the freshness left (0 when `stale`)."""

    key: str
    value: bytes
    content_type: str
    version: str
    tags: frozenset[str]
    created: datetime
    ttl_ms: int
    swr_ms: int = 0
    stale: bool = False

    @property
    def etag(self) -> str:
        """The strong HTTP ETag: the version in double quotes."""
        return f'"{self.version}"'

    @property
    def max_age(self) -> int:
        """Whole seconds of freshness left, rounded down, for `Cache-Control: max-age`."""
        return self.ttl_ms // 1000


@dataclass(frozen=True, slots=True)
class WriteCondition:
    """When a write may happen: always, `if_match` a version, or `if_none_match_any` (absent).

    Conditions look at the fresh entry only: a stale entry counts as absent, like a miss. Both
    at once never hold (RFC 9110 §13.2.2 evaluates both; no entry is at a version and absent).
    """

    if_match: str | None = None
    if_none_match_any: bool = False

    @property
    def contradictory(self) -> bool:
        return self.if_match is not None and self.if_none_match_any

    def holds(self, current: str | None) -> bool:
        """True when the write may go ahead, `current` being the fresh entry's version."""
        if self.contradictory:
            return False
        if self.if_none_match_any:
            return current is None
        return self.if_match is None or self.if_match == current


UNCONDITIONAL = WriteCondition()
IF_NONE_MATCH_ANY = WriteCondition(if_none_match_any=True)


def if_match(version: str) -> WriteCondition:
    return WriteCondition(if_match=version)


@dataclass(frozen=True, slots=True)
class FillLease:
    """The right to fill a missing key, held by the first caller that missed it."""

    token: str
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a fill-lease lookup found.

    - fresh hit: `entry` (not stale), no lease;
    - this caller must fill: `lease`, and `entry` is the stale copy if one is in its window;
    - another caller is filling: no lease, `entry` is the stale copy or None, and
      `retry_after_ms` is how long that caller's lease has left.
    """

    entry: Entry | None
    lease: FillLease | None = None
    retry_after_ms: int = 0

    @property
    def settled(self) -> bool:
        """True unless the caller has nothing yet and should wait for another caller's fill."""
        return self.entry is not None or self.lease is not None


@dataclass(frozen=True, slots=True)
class Lock:
    """A held lock. `fence` grows strictly with every acquire of `resource`, issued atomically
    with it: max(last fence + 1, the backend's clock in microseconds), so fences keep growing even
    after the backend lost its data, and stay below 2**53 (exact in JSON) until the year 2255.

    `took_over` is True when the previous holder's lease ran out without a release: that holder
    lost the lock (audit it as a lock steal).
    """

    resource: str
    token: str
    fence: int
    ttl_ms: int
    took_over: bool = False


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counters only the backend sees, since it started (Redis: the whole server's)."""

    expired_keys: int
    evicted_keys: int


@dataclass(frozen=True, slots=True)
class TtlPolicy:
    default_ms: int
    max_ms: int
