"""The hub's contracts, written once: `HistoryContract` and `PresenceContract` prove the
docstrings of `services/notifications/domain/port.py`; each adapter's test module subclasses them.

A subclass implements `make_adapter(**bounds)` (and `forget()` when its backend outlives the
test). `make_replica(adapter, new_adapter)` is another process of the same deployment: by default
a new adapter on the same backend; the embedded adapter, which has no other process, answers
with itself.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

import pytest

from outrigger.testing import ContractSuite
from services.notifications.domain import ORIGIN, ChannelHistory, History, Presence
from tests.notifications.support import Follower, draft, following

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from services.notifications.domain import HistoryId

    NewHistory = Callable[..., Awaitable[History]]


class HistoryContract(ContractSuite[History]):
    async def make_replica(
        self, adapter: History, new_adapter: NewHistory, **bounds: Any
    ) -> History:
        return await new_adapter(**bounds)

    @pytest.fixture
    async def history(self, adapter: History) -> History:
        await adapter.start()
        return adapter

    @pytest.fixture
    async def replica(self, history: History, new_adapter: NewHistory) -> History:
        return await self.make_replica(history, new_adapter)

    async def test_ids_increase_across_channels(self, history: History) -> None:
        published = [await history.publish(draft(channel)) for channel in "abacb"]
        ids = [p.id for [p] in published]
        assert ids == sorted(ids)
        assert len(set(ids)) == 5
        assert [p.channel for [p] in published] == list("abacb")
        assert not any(p.duplicate for [p] in published)
        read = await history.read(["a", "b", "c"], ORIGIN, 10)
        assert [(m.id, m.channel) for m in read] == [(p.id, p.channel) for [p] in published]

    async def test_a_message_reads_back_as_published(self, history: History) -> None:
        data = '{"text":"héllo \\n","n":[1,2]}'.encode()
        [with_key] = await history.publish(draft("a", event="order.créé", data=data, key="m-1"))
        [without] = await history.publish(draft("a", event="x"))
        first, second = await history.read(["a"], ORIGIN, 10)
        assert (first.id, first.channel, first.event) == (with_key.id, "a", "order.créé")
        assert (first.data, first.key) == (data, "m-1")
        assert (second.id, second.event, second.data, second.key) == (without.id, "x", b"{}", None)

    async def test_concurrent_publishers_get_increasing_ids_and_the_feed_has_them_in_order(
        self, history: History, new_adapter: NewHistory
    ) -> None:
        publishers = [history] + [await self.make_replica(history, new_adapter) for _ in range(3)]

        async def publish_many(publisher: History) -> list[HistoryId]:
            ids = []
            for n in range(25):
                channels = random.sample(["a", "b", "c"], k=1 + n % 3)
                ids += [p.id for p in await publisher.publish(draft(*channels))]
            return ids

        async with following(history, publishers[-1]) as follower:
            runs = await asyncio.gather(*(publish_many(p) for p in publishers))
            every = sorted(id_ for run in runs for id_ in run)
            await follower.until(lambda: len(follower.messages) >= len(every))
        for run in runs:
            assert run == sorted(run)
        assert len(set(every)) == len(every) == 4 * sum(1 + n % 3 for n in range(25))
        assert [m.id for m in follower.messages] == every
        assert [m.id for m in await history.read(["a", "b", "c"], ORIGIN, 1000)] == every

    async def test_a_republished_key_stores_nothing_and_returns_the_first_id(
        self, history: History, replica: History
    ) -> None:
        async with following(history, replica) as follower:
            [first] = await replica.publish(draft("a", key="order-7", data=b"1"))
            [again] = await history.publish(draft("a", key="order-7", data=b"2"))
            [last] = await replica.publish(draft("a", data=b"3"))
            await follower.until(lambda: len(follower.messages) >= 2)
        assert not first.duplicate
        assert (again.channel, again.id, again.duplicate) == ("a", first.id, True)
        assert [m.data for m in await history.read(["a"], ORIGIN, 10)] == [b"1", b"3"]
        assert [m.id for m in follower.messages] == [first.id, last.id]

    async def test_de_duplication_is_per_channel(self, history: History) -> None:
        [a] = await history.publish(draft("a", key="k"))
        b, a_again, c = await history.publish(draft("b", "a", "c", key="k"))
        assert not a.duplicate
        assert (b.channel, b.duplicate) == ("b", False)
        assert (a_again.channel, a_again.id, a_again.duplicate) == ("a", a.id, True)
        assert (c.channel, c.duplicate) == ("c", False)
        assert a.id < b.id < c.id
        [b_again] = await history.publish(draft("b", key="k"))
        assert (b_again.id, b_again.duplicate) == (b.id, True)
        read = await history.read(["a", "b", "c"], ORIGIN, 10)
        assert [(m.channel, m.id) for m in read] == [("a", a.id), ("b", b.id), ("c", c.id)]

    async def test_a_key_is_remembered_for_the_window_only(self, new_adapter: NewHistory) -> None:
        history = await new_adapter(dedupe_seconds=0.2)
        [first] = await history.publish(draft("a", key="k"))
        [again] = await history.publish(draft("a", key="k"))
        assert (again.id, again.duplicate) == (first.id, True)
        await asyncio.sleep(0.3)
        [later] = await history.publish(draft("a", key="k"))
        assert not later.duplicate
        assert later.id > first.id
        assert len(await history.read(["a"], ORIGIN, 10)) == 2

    async def test_a_draft_for_several_channels_gives_each_its_own_id(
        self, history: History
    ) -> None:
        published = await history.publish(draft("c", "a", "b", data=b'{"n":1}'))
        assert [p.channel for p in published] == ["c", "a", "b"]
        ids = [p.id for p in published]
        assert ids == sorted(ids)
        assert len(set(ids)) == 3
        for p in published:
            [message] = await history.read([p.channel], ORIGIN, 10)
            assert (message.id, message.data) == (p.id, b'{"n":1}')

    async def test_readers_and_followers_see_a_draft_in_all_its_channels_or_none(
        self, history: History, replica: History
    ) -> None:
        channels = ("x", "y", "z")
        snapshots: list[list[bytes]] = []
        publishing = True

        async def read_while_publishing() -> None:
            while publishing:
                read = await replica.read(channels, ORIGIN, 10_000)
                snapshots.append([m.data for m in read])
                await asyncio.sleep(0)

        async def publish(n: int) -> None:
            await history.publish(draft(*channels, data=str(n).encode()))

        async with following(replica, history) as follower:
            reader = asyncio.create_task(read_while_publishing())
            await asyncio.gather(*(publish(n) for n in range(60)))
            publishing = False
            await reader
            await follower.until(lambda: len(follower.messages) >= 180)
        assert len(snapshots) > 1
        for snapshot in snapshots:
            assert all(snapshot.count(data) == 3 for data in snapshot)
        fed = [m.data for m in follower.messages]
        assert [fed[i : i + 3] for i in range(0, 180, 3)] == [[d] * 3 for d in fed[::3]]
        assert sorted(fed[::3], key=int) == [str(n).encode() for n in range(60)]

    async def test_read_after_an_id_across_channels_in_id_order_with_a_limit(
        self, history: History
    ) -> None:
        ids = {}
        for n in range(12):
            [p] = await history.publish(draft("abcd"[n % 4], data=str(n).encode()))
            ids[n] = p.id
        wanted = [n for n in range(12) if n % 4 in (0, 2)]  # channels a and c
        read = await history.read(["c", "a"], ids[2], 3)
        assert [m.data for m in read] == [str(n).encode() for n in wanted if n > 2][:3]
        rest = await history.read(["a", "c"], read[-1].id, 100)
        assert [m.data for m in rest] == [str(n).encode() for n in wanted if n > 2][3:]
        assert len(rest) < 100
        assert await history.read(["a", "c"], ids[11], 10) == []
        assert await history.read(["never"], ORIGIN, 10) == []
        assert [m.data for m in await history.read(["a"], ORIGIN, 1)] == [b"0"]

    async def test_trimming_by_length_keeps_about_max_length_and_tells_what_was_lost(
        self, new_adapter: NewHistory
    ) -> None:
        history = await new_adapter(max_length=10)
        [quiet] = await history.publish(draft("quiet"))
        ids = [p.id for n in range(40) for p in await history.publish(draft("busy"))]
        kept = [m.id for m in await history.read(["busy"], ORIGIN, 100)]
        assert 10 <= len(kept) <= 15
        assert kept == ids[-len(kept) :]
        last_dropped = ids[-len(kept) - 1]
        described = await history.describe("busy")
        assert described == ChannelHistory("busy", len(kept), kept[0], ids[-1])
        assert await history.lost(["busy"], ids[0])
        assert await history.lost(["busy"], quiet.id)
        assert await history.lost(["quiet", "busy"], ids[-len(kept) - 2])
        assert not await history.lost(["busy"], last_dropped)
        assert not await history.lost(["busy"], ids[-1])
        assert not await history.lost(["quiet"], quiet.id)

    async def test_trimming_by_age_drops_old_messages_and_tells_what_was_lost(
        self, new_adapter: NewHistory
    ) -> None:
        history = await new_adapter(max_age_seconds=0.3)
        [b1], [a1], [a2] = [await history.publish(draft(c)) for c in "baa"]
        await asyncio.sleep(0.4)
        [a3] = await history.publish(draft("a", data=b"new"))
        other = await self.make_replica(history, new_adapter, max_age_seconds=0.3)
        looked = await asyncio.gather(history.trim(), other.trim())
        assert looked[0] == 2
        assert [m.id for m in await history.read(["a", "b"], ORIGIN, 10)] == [a3.id]
        assert await history.describe("a") == ChannelHistory("a", 1, a3.id, a3.id)
        assert await history.describe("b") == ChannelHistory("b", 0, None, None)
        assert await history.channels([">"]) == ["a"]
        assert await history.lost(["a"], a1.id)
        assert await history.lost(["a"], b1.id)
        assert await history.lost(["b"], ORIGIN)
        assert not await history.lost(["a"], a2.id)
        assert not await history.lost(["b"], b1.id)
        assert not await history.lost(["a", "b"], a2.id)

    async def test_nothing_is_lost_while_nothing_was_dropped(self, history: History) -> None:
        [first] = await history.publish(draft("a"))
        for _ in range(5):
            await history.publish(draft("a"))
        assert not await history.lost(["a"], first.id)
        assert not await history.lost(["a", "never"], first.id)
        assert await history.trim() == 1
        assert not await history.lost(["a"], first.id)
        assert len(await history.read(["a"], ORIGIN, 10)) == 6

    async def test_channels_lists_those_with_history_that_the_patterns_follow(
        self, history: History
    ) -> None:
        for channel in ("orders.created", "orders.eu.created", "users.1", "jobs.7f3c"):
            await history.publish(draft(channel))
        assert await history.channels(["orders.*"]) == ["orders.created"]
        assert await history.channels(["orders.>"]) == ["orders.created", "orders.eu.created"]
        assert await history.channels(["*.*.created", "users.*"]) == [
            "orders.eu.created",
            "users.1",
        ]
        assert await history.channels([">"]) == [
            "jobs.7f3c",
            "orders.created",
            "orders.eu.created",
            "users.1",
        ]
        assert await history.channels(["users.1", "users.2", "orders"]) == ["users.1"]
        assert await history.channels(["jobs.7f3c", "*.1"]) == ["jobs.7f3c", "users.1"]
        assert await history.channels(["*"]) == []
        assert await history.channels([]) == []

    async def test_describe_tells_length_and_range(self, history: History) -> None:
        assert await history.describe("a") == ChannelHistory("a", 0, None, None)
        ids = [p.id for _ in range(3) for p in await history.publish(draft("a", "b"))]
        assert await history.describe("a") == ChannelHistory("a", 3, ids[0], ids[4])
        assert await history.describe("b") == ChannelHistory("b", 3, ids[1], ids[5])

    async def test_follow_delivers_what_another_replica_publishes_in_id_order(
        self, history: History, replica: History
    ) -> None:
        async with following(history, replica) as follower:
            published = []
            for n in range(20):
                channels = ("a", "b") if n % 5 == 0 else ("abc"[n % 3],)
                published += await replica.publish(draft(*channels, data=str(n).encode()))
            published += await replica.publish(draft("a", "c", key="once"))
            published += await history.publish(draft("c", key="once"))
            await follower.until(lambda: len(follower.messages) >= 26)
        stored = [p for p in published if not p.duplicate]
        assert len(stored) == 26
        assert [(m.id, m.channel) for m in follower.messages] == [(p.id, p.channel) for p in stored]
        assert follower.messages[0].data == b"0"
        assert [m.key for m in follower.messages[-2:]] == ["once", "once"]

    async def test_close_ends_every_follower(self, new_adapter: NewHistory) -> None:
        history = await new_adapter()
        followers = [Follower(history), Follower(history)]
        for follower in followers:
            await follower.ready(history)
        await history.close()
        for follower in followers:
            await follower.until(lambda f=follower: f.ended)
        await history.close()

    async def test_start_and_check_answer_when_the_backend_does(self, history: History) -> None:
        await history.start()
        await history.check()


class PresenceContract(ContractSuite[Presence]):
    @pytest.fixture
    def presence(self, adapter: Presence) -> Presence:
        return adapter

    async def test_counts_are_summed_over_replicas(self, presence: Presence) -> None:
        assert await presence.counts() == {}
        await presence.report("r1", {"orders.*": 2, "users.1": 1}, 30)
        await presence.report("r2", {"orders.*": 3, "jobs.>": 5}, 30)
        assert await presence.counts() == {"orders.*": 5, "users.1": 1, "jobs.>": 5}

    async def test_a_report_replaces_the_last_and_an_empty_one_removes_it(
        self, presence: Presence
    ) -> None:
        await presence.report("r1", {"a": 2, "b": 1}, 30)
        await presence.report("r2", {"a": 1}, 30)
        await presence.report("r1", {"a": 4}, 30)
        assert await presence.counts() == {"a": 5}
        await presence.report("r1", {}, 30)
        assert await presence.counts() == {"a": 1}
        await presence.report("r2", {}, 30)
        assert await presence.counts() == {}

    async def test_a_replica_that_stops_reporting_drops_out_after_its_ttl(
        self, presence: Presence
    ) -> None:
        await presence.report("gone", {"a": 2}, 0.2)
        await presence.report("alive", {"a": 1, "b": 1}, 30)
        assert await presence.counts() == {"a": 3, "b": 1}
        await asyncio.sleep(0.3)
        assert await presence.counts() == {"a": 1, "b": 1}

    async def test_many_subscriptions_in_one_report(self, presence: Presence) -> None:
        counts = {f"jobs.{n}": 1 + n % 3 for n in range(5000)}
        await presence.report("r1", counts, 30)
        await presence.report("r2", counts, 30)
        assert await presence.counts() == {name: 2 * n for name, n in counts.items()}


__all__ = ["HistoryContract", "PresenceContract"]
