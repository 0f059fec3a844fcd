"""`NotificationsClient`, the SDK of the notifications hub, against a hub that speaks its wire
format (`tests/notifications/wire_hub.py`), served by uvicorn on a free port.

The hub in these tests is the test's own, so each one can cut a connection, stop a stream with
the kit's `shutdown` frame, trim history or refuse a reconnect exactly where it wants, and see
what the client asked for each time. The client's waits before reconnecting are recorded rather
than slept (`waits`), so the tests check them without timing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from outrigger.clients import (
    ChannelInfo,
    Notification,
    NotificationsClient,
    Published,
    Reset,
    SyncNotificationsClient,
)
from outrigger.clients import notifications as sdk
from outrigger.errors import ExternalServiceError, Forbidden, InvalidInput, Unauthorized
from outrigger.http.sse import RECONNECT_AFTER_MS
from outrigger.resilience import Policy, Retry
from outrigger.testing import bearer, free_port, serving, unique
from tests.notifications.wire_hub import CuttingTransport, WireHub

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from outrigger.clients import Received

WAIT_SECONDS = 10.0
EVERY_CHANNEL = ("**",)


@dataclass
class Served:
    hub: WireHub
    url: str

    def token(self, *scopes: str, channels: Sequence[str] = EVERY_CHANNEL) -> str:
        header = bearer(self.hub.settings, *scopes, channels=channels)
        return header["Authorization"].removeprefix("Bearer ")

    def client(self, *scopes: str, channels: Sequence[str] = EVERY_CHANNEL) -> NotificationsClient:
        return NotificationsClient(
            self.url,
            token=self.token(*scopes, channels=channels),
            policy=Policy(unique("notifications"), retry=Retry(3, base_delay=0.01, max_delay=0.05)),
            transport=CuttingTransport(),
        )


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    hub = WireHub()
    async with serving(hub.app()) as url:
        yield Served(hub, url)


@pytest.fixture
async def hub_client(served: Served) -> AsyncIterator[NotificationsClient]:
    async with served.client() as client:
        yield client


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds the client waits before each reconnect, recorded instead of slept."""
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)
        await asyncio.sleep(0)

    monkeypatch.setattr(sdk, "sleep", record)
    return waited


async def taken(subscription: AsyncIterator[Received], count: int) -> list[Received]:
    async with asyncio.timeout(WAIT_SECONDS):
        return [await anext(subscription) for _ in range(count)]


async def test_publish_answers_the_history_id_and_a_retried_id_is_not_published_twice(
    served: Served, hub_client: NotificationsClient
) -> None:
    first = await hub_client.publish("orders.eu", "order.placed", {"order": 7}, id="o-7")
    again = await hub_client.publish("orders.eu", "order.placed", {"order": 7}, id="o-7")
    other = await hub_client.publish("orders.eu", "order.placed", [1, "two", None])

    assert first == Published("orders.eu", first.id, duplicate=False)
    assert again == Published("orders.eu", first.id, duplicate=True)
    assert other.id != first.id
    assert not other.duplicate
    assert [(m.data, m.key) for m in served.hub.history] == [
        (b'{"order":7}', "o-7"),
        (b'[1,"two",null]', served.hub.history[1].key),
    ]
    assert served.hub.history[1].key  # made up by the client: a lost answer may be retried

    info = await hub_client.channel("orders.eu")
    assert info == ChannelInfo("orders.eu", 0, 2, first.id, other.id)


async def test_subscribe_delivers_the_followed_channels_live_as_typed_events(
    served: Served, hub_client: NotificationsClient
) -> None:
    subscription = hub_client.subscribe("orders.*", "jobs.7f3c")
    async with contextlib.aclosing(subscription):
        first = asyncio.ensure_future(anext(subscription))
        await served.hub.streams_open(1)
        ids = [
            served.hub.publish("orders.eu", "order.placed", {"order": 1}),
            served.hub.publish("orders.eu.late", "order.placed", {"order": 2}),  # not followed
            served.hub.publish("jobs.7f3c", "job.progress", {"done": 0.5}),
            served.hub.publish("orders.us", "order.paid", "text is JSON too"),
        ]
        received = [await asyncio.wait_for(first, WAIT_SECONDS), *await taken(subscription, 2)]
    assert received == [
        Notification(ids[0], "order.placed", {"order": 1}),
        Notification(ids[2], "job.progress", {"done": 0.5}),
        Notification(ids[3], "order.paid", "text is JSON too"),
    ]
    assert served.hub.seen[0].channels == ["orders.*", "jobs.7f3c"]
    assert served.hub.seen[0].last_event_id is None
    assert served.hub.seen[0].since is None


async def test_since_earliest_and_last_event_id_replay_history_then_go_live(
    served: Served, hub_client: NotificationsClient
) -> None:
    ids = [served.hub.publish("news", "posted", n) for n in range(3)]

    everything = hub_client.subscribe("news", since_earliest=True)
    async with contextlib.aclosing(everything):
        replayed = await taken(everything, 3)
    after = hub_client.subscribe("news", last_event_id=ids[0])
    async with contextlib.aclosing(after):
        missed = await taken(after, 2)
        live = served.hub.publish("news", "posted", 3)
        (fresh,) = await taken(after, 1)

    assert [r.id for r in replayed] == ids
    assert missed == [Notification(ids[1], "posted", 1), Notification(ids[2], "posted", 2)]
    assert fresh == Notification(live, "posted", 3)
    assert (served.hub.seen[0].since, served.hub.seen[0].last_event_id) == ("earliest", None)
    assert (served.hub.seen[1].since, served.hub.seen[1].last_event_id) == (None, ids[0])


async def test_a_dropped_connection_reconnects_with_last_event_id_and_misses_nothing(
    served: Served, hub_client: NotificationsClient, waits: list[float]
) -> None:
    subscription = hub_client.subscribe("orders.>", since_earliest=True)
    ids = [served.hub.publish("orders.eu", "order.placed", n) for n in range(2)]
    async with contextlib.aclosing(subscription):
        before = await taken(subscription, 2)
        served.hub.cut()
        ids.append(served.hub.publish("orders.eu", "order.placed", 2))  # while it is away
        (missed,) = await taken(subscription, 1)
        ids.append(served.hub.publish("orders.us", "order.placed", 3))
        (live,) = await taken(subscription, 1)

    assert [r.id for r in (*before, missed, live)] == ids  # once each, in history order
    first, again = served.hub.seen
    assert (first.since, first.last_event_id) == ("earliest", None)
    assert (again.since, again.last_event_id) == (None, ids[1])
    assert waits == [sdk.RECONNECT_SECONDS]  # the hub named no other wait


async def test_retry_sets_the_wait_and_shutdown_is_followed_by_a_reconnect(
    served: Served, hub_client: NotificationsClient, waits: list[float]
) -> None:
    served.hub.retry_ms = 50  # a frame of its own, first on every stream
    subscription = hub_client.subscribe("news")
    async with contextlib.aclosing(subscription):
        pending = asyncio.ensure_future(anext(subscription))
        await served.hub.streams_open(1)
        first = served.hub.publish("news", "posted", 1)
        assert await asyncio.wait_for(pending, WAIT_SECONDS) == Notification(first, "posted", 1)

        served.hub.cut()
        second = served.hub.publish("news", "posted", 2)
        assert await taken(subscription, 1) == [Notification(second, "posted", 2)]

        served.hub.shut_down()  # `event: shutdown` and `retry: 1000`, as a stopping server does
        third = served.hub.publish("news", "posted", 3)
        assert await taken(subscription, 1) == [Notification(third, "posted", 3)]

    assert waits == [0.05, RECONNECT_AFTER_MS / 1000]
    assert [seen.last_event_id for seen in served.hub.seen] == [None, first, second]


async def test_a_reset_is_a_typed_event_and_the_subscription_goes_on_after_it(
    served: Served, hub_client: NotificationsClient, waits: list[float]
) -> None:
    old = served.hub.publish("news", "posted", 0)
    kept = [served.hub.publish("news", "posted", n) for n in (1, 2)]
    served.hub.publish("other", "posted", 9)
    served.hub.trim(keep=3)  # `old` is gone: resuming after something before it misses it

    subscription = hub_client.subscribe("news", last_event_id="1-0")
    async with contextlib.aclosing(subscription):
        (reset,) = await taken(subscription, 1)
        served.hub.cut()
        live = served.hub.publish("news", "posted", 3)
        (after,) = await taken(subscription, 1)

    assert old not in kept
    assert reset == Reset(kept[-1], "history no longer reaches back that far", kept[-1])
    assert after == Notification(live, "posted", 3)  # nothing replayed twice after the reset
    assert [seen.last_event_id for seen in served.hub.seen] == ["1-0", kept[-1]]


async def test_heartbeats_are_not_yielded_and_a_silent_connection_is_reopened(
    served: Served, hub_client: NotificationsClient, waits: list[float]
) -> None:
    subscription = hub_client.subscribe("news", idle_timeout=0.2)
    async with contextlib.aclosing(subscription):
        pending = asyncio.ensure_future(anext(subscription))
        await served.hub.streams_open(1)
        for _ in range(3):
            served.hub.heartbeat()
        first = served.hub.publish("news", "posted", 1)
        assert await asyncio.wait_for(pending, WAIT_SECONDS) == Notification(first, "posted", 1)

        pending = asyncio.ensure_future(anext(subscription))
        await served.hub.until(lambda: len(served.hub.seen) == 2)  # silent 0.2 s: it reconnects
        second = served.hub.publish("news", "posted", 2)
        assert await asyncio.wait_for(pending, WAIT_SECONDS) == Notification(second, "posted", 2)

    assert served.hub.seen[1].last_event_id == first


async def test_a_hub_refusing_reconnects_is_waited_for_as_it_asks(
    served: Served, hub_client: NotificationsClient, waits: list[float]
) -> None:
    subscription = hub_client.subscribe("news", since_earliest=True)
    first = served.hub.publish("news", "posted", 1)
    async with contextlib.aclosing(subscription):
        await taken(subscription, 1)
        served.hub.refusals = [503, 503, 429]
        served.hub.cut()
        second = served.hub.publish("news", "posted", 2)
        assert await taken(subscription, 1) == [Notification(second, "posted", 2)]

    # the cut: the usual wait; then each refusal's Retry-After, above the backoff's so far
    assert waits == [1.0, 3.0, 3.0, 7.0]
    assert [seen.last_event_id for seen in served.hub.seen] == [None, first, first, first, first]


async def test_errors_the_hub_answers_are_raised(served: Served) -> None:
    async with served.client("notify:subscribe", channels=["orders.**"]) as orders_only:
        with pytest.raises(Forbidden, match=r"'billing\.eu'"):
            await anext(orders_only.subscribe("orders.eu", "billing.eu"))
        with pytest.raises(InvalidInput, match="history id 'yesterday'"):
            await anext(orders_only.subscribe("orders.eu", last_event_id="yesterday"))
        with pytest.raises(Forbidden):
            await orders_only.publish("orders.eu", "order.placed", {})
        with pytest.raises(ValueError, match="at least one channel"):
            await anext(orders_only.subscribe())
        with pytest.raises(ValueError, match="not both"):
            await anext(
                orders_only.subscribe("orders.eu", last_event_id="1-0", since_earliest=True)
            )
    async with NotificationsClient(served.url, policy=Policy(unique("n"))) as anonymous:
        with pytest.raises(Unauthorized):
            await anext(anonymous.subscribe("orders.eu"))
    assert served.hub.streams == []


async def test_a_hub_that_is_not_there_is_an_error_at_once() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with NotificationsClient(nowhere, token="t", policy=Policy(unique("n"))) as client:
        with pytest.raises(ExternalServiceError, match="cannot reach"):
            await anext(client.subscribe("news"))


async def test_the_blocking_client_publishes_and_iterates(served: Served) -> None:
    token = served.token()
    received: list[Received] = []
    ready = threading.Event()

    def script() -> list[Published]:
        with SyncNotificationsClient(served.url, token=token) as hub:
            published = [hub.publish("news", "posted", {"n": n}) for n in range(2)]
            ready.set()
            for item in hub.subscribe("news", since_earliest=True):
                received.append(item)
                if len(received) == 3:
                    break  # leaving the loop closes the subscription
            return published

    running = asyncio.create_task(asyncio.to_thread(script))
    await asyncio.to_thread(ready.wait, WAIT_SECONDS)
    await served.hub.streams_open(1)
    live = served.hub.publish("news", "posted", {"n": 2})
    published = await asyncio.wait_for(running, WAIT_SECONDS)

    assert [r.id for r in received] == [*(p.id for p in published), live]
    assert [r.data for r in received if isinstance(r, Notification)] == [{"n": n} for n in range(3)]
    await served.hub.until(lambda: not served.hub.streams)  # leaving the loop closed it
