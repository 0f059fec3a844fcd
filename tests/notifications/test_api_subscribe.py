"""Subscriptions over a real uvicorn server: live delivery on several channels and patterns at
once, resuming with `Last-Event-ID` (header or query) with no gap and no duplicate, replaying all
history, a reset when history no longer reaches back, heartbeats, the shutdown event, and who
may subscribe to what."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from outrigger.http.sse import RECONNECT_AFTER_MS
from outrigger.testing import EndOfStream, SseReader, unique
from tests.notifications.api_support import PROBLEM, hub_settings, ids, messages, sample, served


async def test_a_published_message_reaches_a_subscriber_with_its_id_name_and_data() -> None:
    channel = unique("orders") + ".created"
    async with served() as hub, hub.subscribe(channel) as stream:
        sent = await hub.publish(channel, {"order": 7}, event="order.created")
        frame = await stream.message()
    assert (frame.id, frame.event, frame.json()) == (sent, "order.created", {"order": 7})


async def test_one_stream_follows_channels_and_patterns_in_history_order() -> None:
    root = unique("app")
    async with (
        served() as hub,
        hub.subscribe(f"{root}.a", f"{root}.orders.*", f"{root}.jobs.>") as stream,
    ):
        followed = [
            await hub.publish(f"{root}.a", 1),
            await hub.publish(f"{root}.orders.eu", 2),
            await hub.publish(f"{root}.jobs.7.progress", 3),
            await hub.publish(f"{root}.jobs.8", 4),
        ]
        await hub.publish(f"{root}.orders.eu.deep", "not followed: * is one segment")
        await hub.publish(f"{root}.b", "not followed")
        followed.append(await hub.publish(f"{root}.a", 5))
        frames = await messages(stream, 5)
    assert ids(frames) == followed
    assert [frame.json() for frame in frames] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("how", ["header", "query"])
async def test_last_event_id_replays_what_was_missed_then_goes_live(how: str) -> None:
    channel = unique("feed")
    async with served() as hub:
        sent = [await hub.publish(channel, n) for n in range(5)]
        resume = (
            {"headers": {"Last-Event-ID": sent[1]}}
            if how == "header"
            else {"last_event_id": sent[1]}
        )
        async with hub.subscribe(channel, **resume) as stream:  # type: ignore[arg-type]
            replayed = await messages(stream, 3)
            sent.append(await hub.publish(channel, 5))
            live = await stream.message()
    assert ids(replayed) == sent[2:5]
    assert live.id == sent[5]
    assert sample("outrigger_notifications_replayed_total") >= 3


async def test_the_header_eventsource_sends_on_reconnecting_wins_over_the_url() -> None:
    channel = unique("feed")
    async with served() as hub:
        sent = [await hub.publish(channel, n) for n in range(4)]
        header = {"Last-Event-ID": sent[2]}
        async with hub.subscribe(channel, headers=header, since="earliest") as stream:
            assert (await stream.message()).id == sent[3]


async def test_since_earliest_replays_everything_history_keeps() -> None:
    channel = unique("feed")
    async with served() as hub:
        sent = [await hub.publish(channel, n) for n in range(3)]
        async with hub.subscribe(channel, since="earliest") as stream:
            assert ids(await messages(stream, 3)) == sent


async def test_replay_then_live_has_no_gap_and_no_duplicate_while_messages_keep_coming() -> None:
    channel = unique("busy")
    async with served() as hub:
        sent = [await hub.publish(channel, n) for n in range(40)]

        async def keep_publishing() -> None:
            for n in range(40, 80):
                sent.append(await hub.publish(channel, n))

        publishing = asyncio.create_task(keep_publishing())
        await asyncio.sleep(0)
        async with hub.subscribe(channel, since="earliest") as stream:
            frames = await messages(stream, 80)
        await publishing
    assert [frame.json() for frame in frames] == list(range(80))
    assert ids(frames) == sent


async def test_resuming_after_what_history_dropped_starts_with_a_reset_then_goes_live() -> None:
    channel = unique("short")
    before = sample("outrigger_notifications_resets_total")
    async with served(hub_settings(notifications_history_max_length=3)) as hub:
        sent = [await hub.publish(channel, n) for n in range(6)]
        async with hub.subscribe(channel, headers={"Last-Event-ID": sent[0]}) as stream:
            reset = await stream.message()
            sent.append(await hub.publish(channel, 6))
            live = await stream.message()
    assert reset.event == "reset"
    assert reset.id == sent[5], "the newest id kept: a reconnect resumes from there"
    assert reset.json()["resume_after"] == sent[5]
    assert sent[0] in reset.json()["reason"]
    assert live.id == sent[6]
    assert sample("outrigger_notifications_resets_total") == before + 1


async def test_heartbeats_are_comment_lines_every_heartbeat_seconds() -> None:
    async with (
        served(hub_settings(notifications_heartbeat_seconds=0.1)) as hub,
        hub.subscribe(unique("quiet")) as stream,
    ):
        frames = [await stream.frame(max_wait=5) for _ in range(2)]
    assert all(frame.is_heartbeat for frame in frames)
    assert frames[0].comments == ["heartbeat"]


async def test_a_server_that_stops_ends_each_stream_with_the_shutdown_event() -> None:
    before = sample("outrigger_notifications_disconnects_total", reason="shutdown")
    channel = unique("feed")
    async with contextlib.AsyncExitStack() as server:
        hub = await server.enter_async_context(served())
        headers = hub.as_("notify:subscribe")
        async with (
            httpx.AsyncClient(base_url=hub.url, headers=headers) as client,
            hub.subscribe(channel, client=client) as stream,
        ):
            await hub.publish(channel, 1)
            assert (await stream.message()).json() == 1
            stopping = asyncio.create_task(server.aclose())
            last = await stream.message()
            assert (last.event, last.retry) == ("shutdown", RECONNECT_AFTER_MS)
            with pytest.raises(EndOfStream):
                await stream.frame()
            await asyncio.wait_for(stopping, 10)
    assert sample("outrigger_notifications_disconnects_total", reason="shutdown") == before + 1


# --- what is refused ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers", "named"),
    [
        ({"channel": "orders..created"}, {}, "orders..created"),
        ({"channel": "orders.>.x"}, {}, "orders.>.x"),
        ({}, {}, "at least one channel"),
        ({"channel": [f"c{n}" for n in range(33)]}, {}, "at most 32"),
        ({"channel": "a", "last_event_id": "17"}, {}, "'17'"),
        ({"channel": "a"}, {"Last-Event-ID": "1-2-3"}, "'1-2-3'"),
        ({"channel": "a", "since": "latest"}, {}, "'earliest'"),
    ],
)
async def test_a_bad_subscription_is_a_problem_naming_what_is_wrong(
    query: dict[str, object], headers: dict[str, str], named: str
) -> None:
    async with served() as hub:
        answer = await hub.http.get("/v1/sse", params=query, headers=headers)  # type: ignore[arg-type]
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert named in answer.json()["detail"]


async def test_subscribing_needs_a_token_with_the_scope() -> None:
    async with served() as hub, httpx.AsyncClient(base_url=hub.url) as anonymous:
        nobody = await anonymous.get("/v1/sse", params={"channel": "a"})
        publisher = await anonymous.get(
            "/v1/sse", params={"channel": "a"}, headers=hub.as_("notify:publish")
        )
    assert nobody.status_code == 401
    assert publisher.status_code == 403
    assert publisher.json()["required_scope"] == "notify:subscribe"


async def test_a_channel_the_token_does_not_grant_is_refused_by_name_and_audited() -> None:
    root = unique("tenant")
    async with served() as hub, httpx.AsyncClient(base_url=hub.url) as client:
        headers = hub.as_("notify:subscribe", channels=[f"{root}.*"], subject="mallory")
        allowed = f"{root}.a"
        for wanted in ([f"{root}.a", f"{root}.b.c"], [f"{root}.>"], ["other"]):
            answer = await client.get("/v1/sse", params={"channel": wanted}, headers=headers)
            assert answer.status_code == 403, wanted
            assert repr(wanted[-1]) in answer.json()["detail"]
        records = await hub.audit.wait(3)
        async with hub.subscribe(allowed, headers=headers, client=client):
            pass
    record = records[0].event.data
    assert records[0].routing_key == "notifications.subscribe"
    assert (record["actor"], record["resource"], record["outcome"]) == (
        "mallory",
        f"{root}.b.c",
        "failure",
    )
    assert len(hub.audit.records) == 3, "a subscription granted is not audited"


async def test_a_browser_may_send_its_token_as_access_token() -> None:
    channel = unique("browser")
    async with served() as hub, httpx.AsyncClient(base_url=hub.url) as browser:
        token = hub.token("notify:subscribe", channels=[channel])
        query = {"channel": channel, "access_token": token}
        async with browser.stream("GET", "/v1/sse", params=query) as response:
            assert response.status_code == 200
            stream = SseReader(response)
            sent = await hub.publish(channel, "hello")
            assert (await stream.message()).id == sent
        refused = await browser.get(
            "/v1/sse", params={"channel": "elsewhere", "access_token": token}
        )
        bad = await browser.get("/v1/sse", params={"channel": channel, "access_token": "x"})
    assert refused.status_code == 403
    assert bad.status_code == 401
