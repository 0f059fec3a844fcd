"""History in this process: the embedded default (`OUTRIGGER_REDIS_URL=memory://`).

Ids come from the wall clock like Redis's, kept increasing across channels by one counter. A
channel's messages sit in a deque bounded by `max_length` (exactly: no approximate trimming
here); what falls off, or ages out in `trim()`, raises the channel's `dropped` mark, which
`lost()` compares with a reader's position. Followers are the hubs of this process, each with
its own unbounded queue: the hub drains it as fast as it is fed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.notifications.domain import (
    ORIGIN,
    ChannelHistory,
    HistoryId,
    Message,
    Published,
    follows,
    is_pattern,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from services.notifications.domain import Draft, Interrupted


@dataclass
class _Channel:
    messages: deque[Message] = field(default_factory=deque)
    dropped: HistoryId = ORIGIN  # the highest id this channel no longer keeps


class MemoryHistory:
    def __init__(self, *, max_length: int, max_age_seconds: float, dedupe_seconds: float) -> None:
        self.max_length = max_length
        self.max_age_ms = int(max_age_seconds * 1000)
        self.dedupe_ms = int(dedupe_seconds * 1000)
        self._channels: dict[str, _Channel] = {}
        self._keys: dict[tuple[str, str], tuple[HistoryId, int]] = {}
        self._last = ORIGIN
        self._followers: set[asyncio.Queue[Message | None]] = set()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for queue in self._followers:
            queue.put_nowait(None)
        self._followers.clear()

    async def check(self) -> None:
        return None

    async def publish(self, draft: Draft) -> list[Published]:
        now = _now_ms()
        published = []
        for name in draft.channels:
            if draft.key is not None:
                seen = self._keys.get((name, draft.key))
                if seen is not None and now - seen[1] < self.dedupe_ms:
                    published.append(Published(name, seen[0], duplicate=True))
                    continue
            message = Message(self._next_id(now), name, draft.event, draft.data, draft.key)
            channel = self._channels.setdefault(name, _Channel())
            channel.messages.append(message)
            while len(channel.messages) > self.max_length:
                channel.dropped = channel.messages.popleft().id
            if draft.key is not None:
                self._keys[(name, draft.key)] = (message.id, now)
            for queue in self._followers:
                queue.put_nowait(message)
            published.append(Published(name, message.id, duplicate=False))
        return published

    async def read(self, channels: Sequence[str], after: HistoryId, limit: int) -> list[Message]:
        found = [
            message
            for name in channels
            if (channel := self._channels.get(name)) is not None
            for message in channel.messages
            if message.id > after
        ]
        found.sort(key=lambda message: message.id)
        return found[:limit]

    async def lost(self, channels: Sequence[str], after: HistoryId) -> bool:
        return any(
            channel.dropped > after
            for name in channels
            if (channel := self._channels.get(name)) is not None
        )

    async def channels(self, patterns: Sequence[str]) -> list[str]:
        kept = (name for name, channel in self._channels.items() if channel.messages)
        if not any(is_pattern(pattern) for pattern in patterns):
            return sorted(name for name in kept if name in patterns)
        return sorted(name for name in kept if any(follows(p, name) for p in patterns))

    async def describe(self, channel: str) -> ChannelHistory:
        kept = self._channels.get(channel)
        if kept is None or not kept.messages:
            return ChannelHistory(channel, 0, None, None)
        messages = kept.messages
        return ChannelHistory(channel, len(messages), messages[0].id, messages[-1].id)

    async def trim(self) -> int:
        oldest = HistoryId(max(_now_ms() - self.max_age_ms, 0), 0)
        for channel in self._channels.values():
            while channel.messages and channel.messages[0].id < oldest:
                channel.dropped = channel.messages.popleft().id
        cutoff = _now_ms() - self.dedupe_ms
        for key in [key for key, (_, at) in self._keys.items() if at <= cutoff]:
            del self._keys[key]
        return len(self._channels)

    async def follow(self) -> AsyncIterator[Message | Interrupted]:
        queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._followers.add(queue)
        try:
            while (message := await queue.get()) is not None:
                yield message
        finally:
            self._followers.discard(queue)

    def _next_id(self, now: int) -> HistoryId:
        last = self._last
        self._last = HistoryId(now, 0) if now > last.ms else HistoryId(last.ms, last.seq + 1)
        return self._last


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MemoryPresence:
    """One process's counts: the embedded hub has no other replica."""

    def __init__(self) -> None:
        self._reports: dict[str, tuple[dict[str, int], float]] = {}

    async def report(self, replica: str, counts: Mapping[str, int], ttl_seconds: float) -> None:
        if counts:
            self._reports[replica] = (dict(counts), time.monotonic() + ttl_seconds)
        else:
            self._reports.pop(replica, None)

    async def counts(self) -> dict[str, int]:
        now = time.monotonic()
        for replica in [name for name, (_, until) in self._reports.items() if until <= now]:
            del self._reports[replica]
        summed: dict[str, int] = {}
        for counts, _ in self._reports.values():
            for subscription, count in counts.items():
                summed[subscription] = summed.get(subscription, 0) + count
        return summed
