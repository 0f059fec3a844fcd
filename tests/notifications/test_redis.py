"""The hub's contracts on Redis, plus its key layout, what `lost` makes of data Redis no longer
holds, and Redis going away under a follower (a private Redis of the test's own, which it stops,
pauses and starts).

Other suites share Redis db 15, so every test works under a key prefix of its own and deletes
only those keys afterwards; nothing here flushes the database.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from redis.asyncio import Redis

from outrigger.errors import CacheError
from outrigger.testing import unique
from services.notifications.adapters import build_history
from services.notifications.adapters.memory import MemoryHistory, MemoryPresence
from services.notifications.adapters.redis import RedisHistory, RedisPresence, connect
from services.notifications.domain import ORIGIN, Interrupted
from tests.notifications.contract import HistoryContract, PresenceContract
from tests.notifications.support import Follower, draft, following

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from outrigger.testing.servers import PrivateRedis

pytestmark = pytest.mark.redis

BOUNDS = {"max_length": 1000, "max_age_seconds": 3600.0, "dedupe_seconds": 3600.0}


class RedisServer:
    """Each test on the shared Redis under a key prefix of its own, deleted afterwards."""

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str) -> None:
        self.url = redis_url
        self.key_prefix = unique("on-test")

    async def forget(self) -> None:
        async with Redis.from_url(self.url) as redis:
            keys = [key async for key in redis.scan_iter(match=f"{{{self.key_prefix}}}:*")]
            if keys:
                await redis.delete(*keys)


class TestRedisHistory(RedisServer, HistoryContract):
    async def make_adapter(self, **bounds: Any) -> RedisHistory:
        return RedisHistory(
            self.url, key_prefix=self.key_prefix, timeout_seconds=2.0, **{**BOUNDS, **bounds}
        )

    @pytest.fixture
    async def raw(self, redis_url: str) -> AsyncIterator[Redis]:
        async with Redis.from_url(redis_url) as redis:
            yield redis

    def key(self, name: str) -> str:
        return f"{{{self.key_prefix}}}:{name}"

    async def test_history_lives_under_the_documented_keys(
        self, history: RedisHistory, raw: Redis
    ) -> None:
        [p] = await history.publish(draft("orders.created", key="m:1", data=b'{"a":1}'))
        entries = await raw.xrange(self.key("s:orders.created"))
        assert entries == [(str(p.id).encode(), {b"e": b"created", b"d": b'{"a":1}', b"k": b"m:1"})]
        assert await raw.get(self.key("k:orders.created|m:1")) == str(p.id).encode()
        assert 3_599_000 < await raw.pttl(self.key("k:orders.created|m:1")) <= 3_600_000
        assert await raw.get(self.key("last")) == str(p.id).encode()
        assert await raw.get(self.key("epoch")) == str(p.id).encode()
        assert await raw.smembers(self.key("channels")) == {b"orders.created"}
        keys = {key async for key in raw.scan_iter(match=f"{{{self.key_prefix}}}:*")}
        assert keys == {
            self.key(name).encode()
            for name in ("s:orders.created", "k:orders.created|m:1", "last", "epoch", "channels")
        }

    async def test_trimming_notes_the_highest_id_it_dropped(
        self, new_adapter: Any, raw: Redis
    ) -> None:
        history = await new_adapter(max_length=20)
        ids = [p.id for _ in range(22) for p in await history.publish(draft("a"))]
        assert await raw.xlen(self.key("s:a")) == 22  # 20 + a slack of 2: not trimmed yet
        assert await raw.hget(self.key("dropped"), "a") is None
        await history.publish(draft("a"))
        assert await raw.xlen(self.key("s:a")) == 20
        assert await raw.hget(self.key("dropped"), "a") == str(ids[2]).encode()

    async def test_a_position_from_before_the_data_set_is_lost(self, history: RedisHistory) -> None:
        [old] = await history.publish(draft("a"))
        await self.forget()  # what a restart without persistence leaves
        [new] = await history.publish(draft("a"))
        assert await history.lost(["a"], old.id)
        assert not await history.lost(["a"], new.id)
        assert not await history.lost(["a"], ORIGIN)  # "from the start" has no position to lose
        assert [m.id for m in await history.read(["a"], old.id, 10)] == [new.id]

    async def test_a_stream_that_vanished_lost_everything_and_trim_forgets_it(
        self, history: RedisHistory, raw: Redis
    ) -> None:
        [a1] = await history.publish(draft("a"))
        [b1] = await history.publish(draft("b"))
        await raw.delete(self.key("s:a"))  # evicted, or deleted by hand
        assert await history.lost(["a"], a1.id)
        assert not await history.lost(["a"], b1.id)
        assert not await history.lost(["b"], a1.id)
        assert await history.trim() == 2
        assert await history.channels([">"]) == ["b"]
        assert await history.lost(["a"], a1.id)
        assert await history.lost(["b"], a1.id)  # what "a" held is unknown: assumed lost
        assert not await history.lost(["a", "b"], b1.id)

    async def test_a_position_older_than_a_forgotten_channel_is_lost_in_every_channel(
        self, new_adapter: Any
    ) -> None:
        history = await new_adapter(max_age_seconds=0.2)
        [kept] = await history.publish(draft("kept"))
        [old] = await history.publish(draft("old"))
        await asyncio.sleep(0.3)
        [recent] = await history.publish(draft("kept"))
        await history.trim()  # "old" aged out whole: forgotten, its stream deleted
        assert await history.channels([">"]) == ["kept"]
        assert await history.lost(["kept"], kept.id)
        assert await history.lost(["elsewhere"], kept.id)  # older than max_age: a reset
        assert not await history.lost(["kept", "old", "elsewhere"], old.id)
        [again] = await history.publish(draft("old"))
        assert await history.lost(["old"], kept.id)
        assert [m.id for m in await history.read(["old", "kept"], old.id, 10)] == [
            recent.id,
            again.id,
        ]

    async def test_a_follow_after_close_ends_at_once(self, history: RedisHistory) -> None:
        await history.close()
        late = Follower(history)
        await late.until(lambda: late.ended)
        assert late.items == []

    async def test_an_unreachable_server_is_a_cache_error_at_once(self) -> None:
        history = RedisHistory("redis://user:secret@127.0.0.1:1/0", timeout_seconds=1.0)
        follower = Follower(history)
        try:
            with pytest.raises(CacheError, match=r"Redis at 127\.0\.0\.1:1/0 is unreachable"):
                await history.publish(draft("a"))
            with pytest.raises(CacheError) as failed:
                await history.check()
            with pytest.raises(CacheError):
                await history.read(["a"], ORIGIN, 10)
        finally:
            await history.close()
        await follower.until(lambda: follower.ended)  # it waited for Redis, and never raised
        assert follower.items == []
        assert "secret" not in failed.value.detail
        assert "notification history is unavailable" in failed.value.detail
        assert failed.value.status == 503


class TestRedisPresence(RedisServer, PresenceContract):
    async def make_adapter(self) -> RedisPresence:
        connection = connect(self.url, pool_size=5, timeout_seconds=2.0)
        return RedisPresence(connection, self.key_prefix)

    async def close_adapter(self, adapter: RedisPresence) -> None:
        await adapter.redis.close()

    async def test_a_replica_whose_report_expired_leaves_the_set(
        self, presence: RedisPresence
    ) -> None:
        await presence.report("gone", {"a": 1}, 0.05)
        await asyncio.sleep(0.1)
        assert await presence.counts() == {}
        async with Redis.from_url(self.url) as raw:
            assert await raw.smembers(f"{{{self.key_prefix}}}:replicas") == set()


async def test_build_history_picks_the_backend_of_the_url(redis_url: str) -> None:
    settings = SimpleNamespace(
        redis_url="memory://",
        notifications_key_prefix="on",
        notifications_history_max_length=7,
        notifications_history_max_age_seconds=60,
        notifications_dedupe_seconds=30,
    )
    history, presence = build_history(settings)
    assert isinstance(history, MemoryHistory)
    assert isinstance(presence, MemoryPresence)
    assert (history.max_length, history.max_age_ms, history.dedupe_ms) == (7, 60_000, 30_000)
    settings.redis_url = redis_url
    settings.notifications_key_prefix = prefix = unique("on-test")
    history, presence = build_history(settings)
    assert isinstance(history, RedisHistory)
    assert isinstance(presence, RedisPresence)
    assert presence.redis is history.redis
    assert (history.max_length, history.max_age_ms, history.dedupe_ms) == (7, 60_000, 30_000)
    try:
        await presence.report("r", {"a": 1}, 1)
        assert await presence.counts() == {"a": 1}
        await history.check()
    finally:
        await presence.report("r", {}, 1)
        await history.close()
    assert history.key_prefix == prefix


async def test_a_follower_is_interrupted_by_a_redis_restart_and_goes_on(
    redis_server: PrivateRedis,
) -> None:
    prefix = unique("on-test")
    history = RedisHistory(redis_server.url, key_prefix=prefix, timeout_seconds=1.0)
    publisher = RedisHistory(redis_server.url, key_prefix=prefix, timeout_seconds=1.0)
    try:
        async with following(history, publisher) as follower:
            [before] = await publisher.publish(draft("a", data=b'"before"'))
            await follower.until(lambda: len(follower.messages) == 1)
            await asyncio.to_thread(redis_server.stop)
            with pytest.raises(CacheError, match="unreachable") as down:
                await publisher.publish(draft("a", data=b'"during"'))
            assert down.value.status == 503
            await asyncio.to_thread(redis_server.start)
            await follower.until(lambda: any(isinstance(i, Interrupted) for i in follower.items))
            [after] = await publisher.publish(draft("a", data=b'"after"'))
            await follower.until(lambda: len(follower.messages) == 2)
            interrupted = follower.items.index(Interrupted())
            assert follower.items[interrupted + 1 :] == follower.messages[1:]
        assert [(m.id, m.data) for m in follower.messages] == [
            (before.id, b'"before"'),
            (after.id, b'"after"'),
        ]
        assert follower.items.count(Interrupted()) == 1
        assert after.id > before.id
        assert await history.lost(["a"], before.id)  # that Redis kept nothing: a reset
    finally:
        await history.close()
        await publisher.close()


async def test_a_follower_notices_a_redis_gone_silent(redis_server: PrivateRedis) -> None:
    history = RedisHistory(
        redis_server.url, key_prefix=unique("on-test"), timeout_seconds=0.5, liveness_seconds=0.2
    )
    try:
        async with following(history, history) as follower:
            redis_server.pause()
            try:
                await asyncio.sleep(0.6)  # a PING after 0.2 s of silence, unanswered 0.2 s later
            finally:
                redis_server.resume()
            await follower.until(lambda: Interrupted() in follower.items)
            [p] = await history.publish(draft("a"))
            await follower.until(lambda: len(follower.messages) == 1)
        assert follower.messages[0].id == p.id
    finally:
        await history.close()


async def test_a_follower_whose_connection_is_cut_is_interrupted(
    redis_server: PrivateRedis,
) -> None:
    history = RedisHistory(redis_server.url, key_prefix=unique("on-test"), timeout_seconds=1.0)
    try:
        async with following(history, history) as follower, Redis.from_url(redis_server.url) as raw:
            assert await raw.client_kill_filter(_type="pubsub") == 1
            await follower.until(lambda: Interrupted() in follower.items)
            [p] = await history.publish(draft("a"))
            await follower.until(lambda: len(follower.messages) == 1)
        assert follower.messages[0].id == p.id
        assert follower.items.count(Interrupted()) == 1
    finally:
        await history.close()
