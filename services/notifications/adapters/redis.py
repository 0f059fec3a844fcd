"""History and presence on Redis: a stream per channel, ids in one order, a pub/sub fan-out.

A publish is one EVALSHA (`redis_lua.PUBLISH`): for each channel it checks the de-duplication
key, adds the entry with the next id of the deployment's one order, trims the stream, and then
PUBLISHes every message it stored in one fan-out message. Scripts run alone, so the fan-out
carries messages in id order and a reader (its XRANGEs in one MULTI) sees a draft in all of its
channels or none. `follow()` is a pub/sub subscription of its own (`redis_feed`).

`lost()` compares a position with the marks the scripts keep (the key layout and why, in
`redis_lua`): the highest id trimmed from each channel; the last id of the channels whose every
message aged out (`trim()` deletes those, so a position older than that mark, hence older than
`max_age`, is judged lost in every channel: a reset, never a silent gap); the first id of the data
set (a position from before it comes from a Redis that lost its data, say restarted without
persistence); and a registered channel whose stream is gone (evicted) lost everything. Run Redis
with `maxmemory-policy noeviction` and persistence when history must outlive a restart.

Every Redis failure is a `CacheError` (503) naming the server (`outrigger.redis`).
"""

from __future__ import annotations

import heapq
import itertools
from operator import attrgetter
from typing import TYPE_CHECKING

from outrigger.redis import RedisConnection
from services.notifications.adapters import redis_lua as lua
from services.notifications.adapters.redis_feed import Feeds
from services.notifications.domain import (
    ORIGIN,
    ChannelHistory,
    HistoryId,
    Message,
    Published,
    follows,
    is_pattern,
)
from services.notifications.domain.models import MAX_ID_PART

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from services.notifications.domain import Draft, Interrupted

SCAN_COUNT = 500


def history_id(raw: bytes | str) -> HistoryId:
    """An id as Redis gives it (`b"1765000000000-3"`); Redis only holds ids the scripts made."""
    ms, _, seq = _text(raw).partition("-")
    return HistoryId(int(ms), int(seq))


def _text(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.decode()


def _above(after: HistoryId) -> str | None:
    """The least id above `after` (XRANGE's inclusive start); None when there is none."""
    if after.seq < MAX_ID_PART:
        return f"{after.ms}-{after.seq + 1}"
    return f"{after.ms + 1}-0" if after.ms < MAX_ID_PART else None


def connect(url: str, *, pool_size: int, timeout_seconds: float) -> RedisConnection:
    """One pool to one Redis with the hub's scripts' prelude, shared by history and presence."""
    return RedisConnection(
        url,
        pool_size=pool_size,
        timeout_seconds=timeout_seconds,
        what="notification history",
        prelude=lua.PRELUDE,
    )


class RedisHistory:
    """History on the Redis at `url`, under keys `{<key_prefix>}:…`. `redis` is its connection:
    `RedisPresence` shares it, and `close()` closes it."""

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "on",
        max_length: int = 1000,
        max_age_seconds: float = 86400,
        dedupe_seconds: float = 86400,
        pool_size: int = 20,
        timeout_seconds: float = 2.0,
        liveness_seconds: float = 10.0,
    ) -> None:
        self.redis = connect(url, pool_size=pool_size, timeout_seconds=timeout_seconds)
        self.key_prefix = key_prefix
        self.max_length = max_length
        self.slack = max(1, max_length // 10)
        self.max_age_ms = max(0, int(max_age_seconds * 1000))
        self.dedupe_ms = max(1, int(dedupe_seconds * 1000))
        self._p = p = f"{{{key_prefix}}}:"
        self._marks = [p + "epoch", p + "forgotten", p + "channels", p + "dropped", p + "last"]
        self._publish, self._lost = self.redis.script(lua.PUBLISH), self.redis.script(lua.LOST)
        self._trim = self.redis.script(lua.TRIM)
        self._feeds = Feeds(self.redis.client, p + "fanout", self.redis.where, liveness_seconds)
        self._closed = False

    def _stream(self, channel: str) -> str:
        return f"{self._p}s:{channel}"

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._feeds.close()
            await self.redis.close()

    async def check(self) -> None:
        with self.redis.errors():
            await self.redis.client.ping()

    async def publish(self, draft: Draft) -> list[Published]:
        epoch, _, registry, dropped, last = self._marks
        keys = [last, epoch, registry, dropped]
        for channel in draft.channels:
            keys.append(self._stream(channel))
            if draft.key is not None:
                keys.append(f"{self._p}k:{channel}|{draft.key}")
        args = [self.max_length, self.slack, self.dedupe_ms, self._p + "fanout"]
        args += [draft.event, draft.data, draft.key or "", *draft.channels]
        found = await self.redis.run(self._publish, keys, args)
        return [
            Published(channel, history_id(found[2 * i]), duplicate=found[2 * i + 1] == 1)
            for i, channel in enumerate(draft.channels)
        ]

    async def read(self, channels: Sequence[str], after: HistoryId, limit: int) -> list[Message]:
        start = _above(after)
        if start is None or not channels:
            return []
        with self.redis.errors():
            async with self.redis.client.pipeline(transaction=True) as pipeline:
                for channel in channels:
                    pipeline.xrange(self._stream(channel), start, "+", count=limit)
                replies = await pipeline.execute()
        runs = [
            [_message(channel, entry) for entry in entries]
            for channel, entries in zip(channels, replies, strict=True)
        ]
        return list(itertools.islice(heapq.merge(*runs, key=attrgetter("id")), limit))

    async def lost(self, channels: Sequence[str], after: HistoryId) -> bool:
        if not channels:
            return False
        keys = self._marks + [self._stream(channel) for channel in channels]
        epoch, forgotten, *dropped = await self.redis.run(self._lost, keys, list(channels))
        if epoch and after != ORIGIN and after < history_id(epoch):
            return True
        if forgotten and after < history_id(forgotten):
            return True
        return any(mark and history_id(mark) > after for mark in dropped)

    async def channels(self, patterns: Sequence[str]) -> list[str]:
        registry = self._marks[2]
        if not any(is_pattern(pattern) for pattern in patterns):
            names = list(dict.fromkeys(patterns))
            if not names:
                return []
            with self.redis.errors():
                held = await self.redis.client.smismember(registry, names)
            return sorted(name for name, kept in zip(names, held, strict=True) if kept)
        with self.redis.errors():
            found = {
                _text(raw) async for raw in self.redis.client.sscan_iter(registry, count=SCAN_COUNT)
            }
        return sorted(name for name in found if any(follows(p, name) for p in patterns))

    async def describe(self, channel: str) -> ChannelHistory:
        stream = self._stream(channel)
        with self.redis.errors():
            async with self.redis.client.pipeline(transaction=True) as pipeline:
                pipeline.xlen(stream)
                pipeline.xrange(stream, count=1)
                pipeline.xrevrange(stream, count=1)
                length, first, last = await pipeline.execute()
        if not length:
            return ChannelHistory(channel, 0, None, None)
        return ChannelHistory(channel, length, history_id(first[0][0]), history_id(last[0][0]))

    async def trim(self) -> int:
        _, forgotten, registry, dropped, last = self._marks
        looked: set[str] = set()
        cursor = 0
        while True:
            with self.redis.errors():
                cursor, found = await self.redis.client.sscan(registry, cursor, count=SCAN_COUNT)
            names = [_text(raw) for raw in found]
            if names:
                keys = [forgotten, registry, dropped, last, *map(self._stream, names)]
                await self.redis.run(self._trim, keys, [self.max_age_ms, *names])
                looked.update(names)
            if cursor == 0:
                return len(looked)

    def follow(self) -> AsyncIterator[Message | Interrupted]:
        return self._feeds.follow()


def _message(channel: str, entry: tuple[bytes, dict[bytes, bytes]]) -> Message:
    raw_id, fields = entry
    key = fields.get(b"k")
    return Message(
        history_id(raw_id),
        channel,
        fields[b"e"].decode(),
        fields[b"d"],
        None if key is None else key.decode(),
    )


class RedisPresence:
    """Each replica's counts in a hash of its own that expires with its report's TTL, and the
    set of replicas that reported (a SCAN for the hashes would walk the whole keyspace on every
    sum; the set holds a few names). Summing drops the names whose hash expired."""

    def __init__(self, redis: RedisConnection, key_prefix: str = "on") -> None:
        self.redis = redis
        self._hash = f"{{{key_prefix}}}:presence:"
        self._replicas = f"{{{key_prefix}}}:replicas"
        self._counts = redis.script(lua.COUNTS)

    async def report(self, replica: str, counts: Mapping[str, int], ttl_seconds: float) -> None:
        key = self._hash + replica
        with self.redis.errors():
            async with self.redis.client.pipeline(transaction=True) as pipeline:
                pipeline.delete(key)
                if counts:
                    pipeline.hset(key, items=[part for pair in counts.items() for part in pair])
                    pipeline.pexpire(key, max(1, int(ttl_seconds * 1000)))
                    pipeline.sadd(self._replicas, replica)
                else:
                    pipeline.srem(self._replicas, replica)
                await pipeline.execute()

    async def counts(self) -> dict[str, int]:
        found = await self.redis.run(self._counts, [self._replicas], [self._hash])
        return {found[i].decode(): int(found[i + 1]) for i in range(0, len(found), 2)}
