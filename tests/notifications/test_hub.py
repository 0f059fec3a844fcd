"""The hub's room, without HTTP: a connection's queue (duplicates, overflow under both policies,
drop counts), and the hub on the in-memory history (patterns, replay joined to live without a
gap or a duplicate while messages keep coming, a refill after the feed was cut)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from outrigger.audit_trail import AuditTrail
from outrigger.auth import Principal
from outrigger.bus import connect_bus
from outrigger.http.sse import chunked
from outrigger.testing import unique
from services.notifications.adapters.memory import MemoryHistory, MemoryPresence
from services.notifications.domain import HistoryId, Interrupted
from services.notifications.usecases import Connection, Hub, Limits, NotificationsService
from services.notifications.usecases.connections import REPLAY_PAGE, position
from services.notifications.usecases.service import message_draft
from services.notifications.usecases.trimming import HistoryTrim
from tests.notifications.api_support import sample

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from services.notifications.domain import Message

READER = Principal("reader", frozenset({"notify:subscribe"}), ("**",))


def frame(n: int) -> bytes:
    return b"id: 0-%d\ndata: %d\n\n" % (n, n)


def connection(size: int = 10, policy: Any = "disconnect", last: int = 0) -> Connection:
    return Connection(("a",), Limits(size, policy), last=last)


async def until(condition: Any) -> None:
    for _ in range(5000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("it never happened")


# --- a connection -----------------------------------------------------------------------------


async def test_a_message_offered_again_or_older_than_the_last_is_not_queued_again() -> None:
    c = connection()
    for at in (1, 1, 0, 2, 2, 1, 3):
        c.offer(at, frame(at), chunked(frame(at)))
    assert await c.take() == frame(1) + frame(2) + frame(3)


async def test_take_joins_everything_queued_and_waits_while_nothing_is() -> None:
    c = connection()
    waiting = asyncio.create_task(c.take())
    await asyncio.sleep(0)
    assert not waiting.done()
    c.offer(1, frame(1), chunked(frame(1)))
    c.offer(2, frame(2), chunked(frame(2)))
    assert await waiting == frame(1) + frame(2)
    c.close("client_gone")
    assert await c.take() is None


async def test_overflow_under_disconnect_closes_the_connection_and_counts_it() -> None:
    before = sample("outrigger_notifications_disconnects_total", reason="slow_consumer")
    c = connection(size=3)
    for at in range(1, 5):
        c.offer(at, frame(at), chunked(frame(at)))
    assert c.closed == "slow_consumer"
    assert await c.take() is None
    after = sample("outrigger_notifications_disconnects_total", reason="slow_consumer")
    assert after == before + 1


async def test_overflow_under_drop_oldest_keeps_the_newest_and_counts_each_drop() -> None:
    before = sample("outrigger_notifications_dropped_messages_total")
    c = connection(size=3, policy="drop-oldest")
    for at in range(1, 6):
        c.offer(at, frame(at), chunked(frame(at)))
    assert c.closed is None
    assert await c.take() == frame(3) + frame(4) + frame(5)
    assert sample("outrigger_notifications_dropped_messages_total") == before + 2


# --- the hub ----------------------------------------------------------------------------------


class CutFeed(MemoryHistory):
    """The in-memory history, whose live feed the test cuts (messages published meanwhile never
    come through it, as with Redis pub/sub) and restores (`Interrupted` comes first)."""

    def __init__(self) -> None:
        super().__init__(max_length=10_000, max_age_seconds=3600, dedupe_seconds=3600)
        self.cut = False
        self._was_cut = False

    def cut_feed(self) -> None:
        self.cut = self._was_cut = True

    async def follow(self) -> AsyncIterator[Message | Interrupted]:
        async for item in super().follow():
            if self.cut:
                continue
            if self._was_cut:
                self._was_cut = False
                yield Interrupted()
            yield item


@contextlib.asynccontextmanager
async def running(history: MemoryHistory, limits: Limits | None = None) -> AsyncIterator[Hub]:
    hub = Hub(
        history,
        MemoryPresence(),
        limits or Limits(10_000, "disconnect"),
        heartbeat_seconds=3600,
        send_timeout_seconds=3600,
        presence_seconds=3600,
    )
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


def memory_history() -> MemoryHistory:
    return MemoryHistory(max_length=10_000, max_age_seconds=3600, dedupe_seconds=3600)


def service(history: MemoryHistory, hub: Hub) -> NotificationsService:
    bus = connect_bus(f"memory://{unique('bus')}", source="tests")
    return NotificationsService(history, hub.presence, hub, AuditTrail(bus, "notifications"))


async def publish(history: MemoryHistory, channel: str, n: int) -> HistoryId:
    [landed] = await history.publish(message_draft((channel,), "test", n))
    return landed.id


def ids_in(body: bytes) -> list[str]:
    return [line[4:] for line in body.decode().split("\n") if line.startswith("id: ")]


async def take_ids(c: Connection, count: int) -> list[str]:
    found: list[str] = []
    while len(found) < count:
        body = await asyncio.wait_for(c.take(), 5)
        assert body is not None, "the connection closed"
        found += ids_in(body)
        await asyncio.sleep(0)  # let publishers in between takes
    return found


async def test_a_hub_offers_each_message_to_the_names_and_patterns_that_follow_it() -> None:
    history = memory_history()
    async with running(history) as hub:
        exact = Connection(("orders.eu",), hub.limits, last=hub.last_position)
        star = Connection(("orders.*",), hub.limits, last=hub.last_position)
        hub.register(exact)
        hub.register(star)
        first = await publish(history, "orders.eu", 1)
        second = await publish(history, "orders.eu.deep", 2)
        await until(lambda: hub.last_position == position(second))
        deep = Connection(("orders.>",), hub.limits, last=hub.last_position)
        hub.register(deep)  # a new pattern: the hub works out again who follows what
        last = await publish(history, "orders.eu.deep", 3)
        await until(lambda: deep.frames)
        assert [ids_in(b"".join(c.frames)) for c in (exact, star, deep)] == [
            [str(first)],
            [str(first)],
            [str(last)],
        ]
        assert hub.counts() == {"orders.eu": 1, "orders.*": 1, "orders.>": 1}
        star.close("client_gone")
        assert hub.counts() == {"orders.eu": 1, "orders.>": 1}


async def test_replay_joins_live_without_gap_or_duplicate_while_publishes_go_on() -> None:
    history = memory_history()
    channels = ("a", "b")
    sent = [await publish(history, channels[n % 2], n) for n in range(REPLAY_PAGE + 100)]
    async with running(history) as hub:
        resume_after = sent[99]

        async def keep_publishing() -> None:
            for n in range(REPLAY_PAGE + 100, REPLAY_PAGE + 300):
                sent.append(await publish(history, channels[n % 2], n))
                await asyncio.sleep(0)

        publishing = asyncio.create_task(keep_publishing())
        c = await service(history, hub).subscribe(READER, channels, last_event_id=str(resume_after))
        received = await take_ids(c, len(sent) + 200 - 100)
        await publishing
    assert received == [str(each) for each in sent[100:]]


async def test_a_pattern_resuming_gets_a_channel_begun_during_its_replay_in_order() -> None:
    """A channel the pattern follows whose first message comes after the replayed channels
    were looked up is only live: it still arrives, before the later messages of the others."""
    history = memory_history()
    kept = [await publish(history, "shop.a", n) for n in range(3)]
    async with running(history) as hub:
        c = await service(history, hub).subscribe(READER, ("shop.*",), last_event_id="0-0")
        begun = await publish(history, "shop.new", 3)  # not among the channels looked up
        later = await publish(history, "shop.a", 4)  # in the replayed channel's history too
        await until(lambda: hub.last_position == position(later))
        received = await take_ids(c, 5)
    assert received == [str(each) for each in (*kept, begun, later)]


async def test_a_refill_after_the_feed_was_cut_delivers_what_it_missed_once() -> None:
    before = sample("outrigger_notifications_feed_interruptions_total")
    history = CutFeed()
    async with running(history) as hub:
        c = Connection(("a", "b"), hub.limits, last=hub.last_position)
        hub.register(c)
        sent = [await publish(history, "a", 0)]
        await until(lambda: c.frames)
        history.cut_feed()
        sent += [await publish(history, "ab"[n % 2], n) for n in range(1, 4)]
        await publish(history, "elsewhere", 4)
        history.cut = False
        sent.append(await publish(history, "b", 5))  # through the feed after the refill too
        received = await take_ids(c, len(sent))
        sent.append(await publish(history, "a", 6))
        received += await take_ids(c, 1)
    assert received == [str(each) for each in sent]
    assert sample("outrigger_notifications_feed_interruptions_total") == before + 1


async def test_a_live_subscription_gets_no_message_delivered_before_it_opened() -> None:
    history = CutFeed()
    async with running(history) as hub:
        early = Connection(("a",), hub.limits, last=hub.last_position)
        hub.register(early)
        old = await publish(history, "a", 0)
        await until(lambda: early.frames)
        late = await service(history, hub).subscribe(READER, ["a"])
        history.cut_feed()  # the refill reads again from the hub's last delivered message
        history.cut = False
        new = await publish(history, "a", 1)
        assert ids_in(await asyncio.wait_for(late.take(), 5) or b"") == [str(new)]
        assert ids_in(await asyncio.wait_for(early.take(), 5) or b"") == [str(old), str(new)]


def test_positions_order_as_history_ids_do() -> None:
    ordered = [HistoryId(0, 0), HistoryId(0, 1), HistoryId(1, 0), HistoryId(2**63, 2**64 - 1)]
    assert [position(each) for each in ordered] == sorted(position(each) for each in ordered)
    assert len({position(each) for each in ordered}) == len(ordered)


async def test_the_trim_step_trims_history_and_measures_what_it_keeps() -> None:
    history = MemoryHistory(max_length=10, max_age_seconds=0.001, dedupe_seconds=3600)
    for n in range(3):
        await publish(history, "old", n)
    await asyncio.sleep(0.01)  # older than the max age: what the next trim drops
    for n in range(2):
        await publish(history, unique("kept"), n)
    await HistoryTrim(history)()
    assert sample("outrigger_notifications_history_channels") == 2
    assert sample("outrigger_notifications_history_messages") == 2
    assert (await history.describe("old")).length == 0
