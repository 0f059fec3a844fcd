"""The hub's port: `History`, implemented in memory (embedded, one process) and on Redis.

History keeps each channel's recent messages, gives every message a history id from one
increasing order across all channels (`models.HistoryId`), drops a republished key, and feeds
every message, as it is stored, to every replica following it. Arguments arrive checked: the
use-case room applied `rules`. A backend failure raises `CacheError` (503); after it, whether a
publish was stored is unknown (publishing it again with the same key is safe).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from services.notifications.domain.models import (
        ChannelHistory,
        Draft,
        HistoryId,
        Interrupted,
        Message,
        Published,
    )


class History(Protocol):
    """Per-channel history with one id order, de-duplication and a live feed.

    Bounds (set when the adapter is built): at most about `max_length` messages per channel
    (trimming may keep a few more), none older than `max_age` once `trim()` has run, and a key is
    remembered for `dedupe_window` after its first publish.
    """

    async def start(self) -> None:
        """Prepares the adapter (scripts loaded lazily, connections opened lazily). Idempotent."""
        ...

    async def close(self) -> None:
        """Ends every `follow()` iterator and closes every connection. Idempotent."""
        ...

    async def check(self) -> None:
        """Returns when the backend answers now; raises `CacheError` saying why not."""
        ...

    async def publish(self, draft: Draft) -> list[Published]:
        """Stores the draft in each of its channels and feeds it to every follower, in one atomic
        step: a concurrent reader or follower sees it in all of its channels or in none.

        Each channel's message gets its own id, greater than every id given before in any
        channel; the feed carries messages in id order. A channel where `draft.key` was published
        within the de-duplication window stores nothing and feeds nothing: its `Published` has
        the first id and `duplicate=True`. One `Published` per channel, in the draft's order.
        """
        ...

    async def read(self, channels: Sequence[str], after: HistoryId, limit: int) -> list[Message]:
        """The kept messages of `channels` (names, not patterns) with an id above `after`, in id
        order, at most `limit` (≥ 1). Fewer than `limit` means there are no more now."""
        ...

    async def lost(self, channels: Sequence[str], after: HistoryId) -> bool:
        """Whether any of `channels` has dropped (trimmed or aged out) a message with an id
        above `after`: a reader resuming after `after` would then miss something.

        It may also answer True, never False wrongly, for a position older than `max_age`, or
        older than the backend's data set (a Redis that restarted without its data): history
        no longer says what happened before then."""
        ...

    async def channels(self, patterns: Sequence[str]) -> list[str]:
        """The channels that hold history now and that one of `patterns` follows
        (`rules.follows`), sorted. A name with no wildcard is returned only if it holds
        history."""
        ...

    async def describe(self, channel: str) -> ChannelHistory:
        """How many messages `channel` keeps and the first and last ids (a channel never
        published to has length 0)."""
        ...

    async def trim(self) -> int:
        """Drops the messages older than `max_age` in every channel; returns how many channels
        it looked at. Safe to run on every replica at once."""
        ...

    def follow(self) -> AsyncIterator[Message | Interrupted]:
        """Every message published from now on, by any process, in id order, until `close()`.

        When the backend goes away the iterator waits, reconnects by itself (with backoff) and
        then yields `Interrupted` before the next message: what was published meanwhile is in
        history only. It never raises a backend error.
        """
        ...


class Presence(Protocol):
    """Who follows what, across replicas: each replica reports its own counts, any replica sums
    them (for `GET /v1/channels/{channel}`). A replica that stops reporting drops out after its
    report's `ttl_seconds`."""

    async def report(self, replica: str, counts: Mapping[str, int], ttl_seconds: float) -> None:
        """Replaces `replica`'s counts (subscription, a channel or pattern → open connections
        following it); an empty mapping removes the replica's report."""
        ...

    async def counts(self) -> dict[str, int]:
        """The live replicas' counts, summed per subscription."""
        ...
