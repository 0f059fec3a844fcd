"""Server-Sent Events subscriptions over a real uvicorn server, on the embedded and the PostgreSQL
backend: catch-up then live with no gap and no duplicate, resuming with `Last-Event-ID`, filters,
stream subscriptions, heartbeats, clients that fall behind or stop reading, and scopes."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client import REGISTRY

from outrigger.testing import EndOfStream
from tests.event_store.api_support import (
    BACKENDS,
    PROBLEM,
    database_for,
    event,
    settings_for,
)
from tests.event_store.fresh_database import fresh_database
from tests.event_store.sse_support import Served, post_events, served
from tests.event_store.suite import new_category, new_stream

if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from outrigger.sse import Frame
    from outrigger.testing import SseReader

PADDING = "x" * 2000  # about 2 KB per event: a few hundred fill the socket buffers


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_for(request.param, request, tmp_path)


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, request, tmp_path) as url:
        yield url


def serve(database: str, tmp_path: Path, **overrides: Any) -> AbstractAsyncContextManager[Served]:
    return served(settings_for(database, tmp_path, **overrides))


def positions(frames: list[Frame]) -> list[int]:
    for frame in frames:
        assert frame.json()["global_position"] == frame.position
    return [frame.position for frame in frames]


def numbers(frames: list[Frame]) -> list[int]:
    return [frame.json()["data"]["n"] for frame in frames]


async def write_padded(api: Served, stream_id: str, count: int, first: int = 0) -> None:
    """Appends events `first` to `first + count - 1` (`n`), of about 2 KB each."""
    for start in range(first, first + count, 100):
        batch = [
            {"type": "Padded", "data": {"n": n, "pad": PADDING}}
            for n in range(start, min(start + 100, first + count))
        ]
        await post_events(api.http, stream_id, *batch)


async def open_subscriptions(api: Served) -> float:
    """The `outrigger_event_store_subscribers` gauge, as `/metrics` shows it."""
    for line in (await api.http.get("/metrics")).text.splitlines():
        if line.startswith("outrigger_event_store_subscribers "):
            return float(line.split()[1])
    raise AssertionError("no outrigger_event_store_subscribers in /metrics")


async def rest_of(sse: SseReader) -> tuple[list[Frame], list[Frame], BaseException]:
    """Every event frame and control frame left, and how the stream ended."""
    events: list[Frame] = []
    controls: list[Frame] = []
    try:
        while True:
            frame = await sse.message()
            (controls if frame.event else events).append(frame)
    except (EndOfStream, httpx.RemoteProtocolError) as end:
        return events, controls, end


# --- catch-up, live, resume ------------------------------------------------------------------


async def test_a_subscription_catches_up_then_goes_live_with_no_gap_and_no_duplicate(
    empty_database: str, tmp_path: Path
) -> None:
    async with serve(empty_database, tmp_path, event_store_sse_batch_size=7) as api:
        streams = [new_stream() for _ in range(3)]
        for n in range(30):
            await post_events(api.http, streams[n % 3], event(n))
        ids = [str(uuid.uuid4()) for _ in range(200)]
        live = asyncio.Event()

        async def write() -> None:
            for n in range(0, 200, 2):
                if n == 100:
                    await live.wait()  # the second half is written while it is live
                pair = [event(m, id=ids[m]) for m in (n, n + 1)]
                await post_events(api.http, streams[n // 2 % 3], *pair)

        async with api.subscribe(params={"after": 0}) as sse:
            writer = asyncio.create_task(write())
            frames: list[Frame] = []
            order: list[str] = []
            async with asyncio.timeout(60):
                while not set(ids) <= set(order):
                    frame = await sse.message()
                    if frame.event == "live":
                        live.set()
                        assert frame.json() == {"position": frames[-1].position}
                        order.append("live")
                        continue
                    assert frame.event is None, frame
                    frames.append(frame)
                    order.append(frame.json()["id"])
            await writer
        assert positions(frames) == list(range(1, 231))
        assert order.count("live") == 1
        assert len(set(order)) == len(order)
        assert [event_id for event_id in order if event_id in ids] == ids
        assert order.index("live") < order.index(ids[100])


async def test_reconnecting_with_last_event_id_resumes_right_after_it(
    database: str, tmp_path: Path
) -> None:
    async with serve(database, tmp_path) as api:
        category = new_category()
        stream = new_stream(category)
        await post_events(api.http, stream, *[event(n) for n in range(6)], sequenced=True)
        async with api.subscribe(params={"category": category}) as sse:
            first = await sse.messages_until("live")
        assert numbers(first) == [0, 1, 2, 3, 4, 5]
        resume = {"Last-Event-ID": first[2].id or ""}
        params = {"after": 0, "category": category}  # the header wins over `after`
        async with api.subscribe(params=params, headers=resume) as sse:
            again = await sse.messages_until("live")
            assert positions(again) == positions(first[3:])
            await post_events(api.http, stream, event(6), event(7))
            assert numbers(await sse.messages(2)) == [6, 7]
        async with api.subscribe(headers=resume) as sse:
            [next_one] = await sse.messages(1)
            assert next_one.position == first[2].position + 1
        after = {"after": first[2].position, "category": category}
        async with api.subscribe(params=after) as sse:
            assert numbers(await sse.messages(5)) == [3, 4, 5, 6, 7]


async def test_a_subscription_after_a_position_beyond_the_head_holds_no_other_back(
    database: str, tmp_path: Path
) -> None:
    category = new_category()
    async with serve(database, tmp_path) as api:
        far = {"Last-Event-ID": str(10**12)}
        async with (
            api.subscribe(headers=far) as ahead,
            api.subscribe(params={"category": category}) as sse,
        ):
            assert await ahead.messages_until("live") == []
            assert await sse.messages_until("live") == []
            await post_events(api.http, new_stream(category), event(0))
            assert numbers(await sse.messages(1)) == [0]


@pytest.mark.parametrize("header", ["abc", "-1", "1.5", str(2**53), "18446744073709551616"])
async def test_a_bad_last_event_id_is_a_422(database: str, tmp_path: Path, header: str) -> None:
    async with serve(database, tmp_path) as api:
        for path in ("/v1/subscribe", f"/v1/streams/{new_stream()}/subscribe"):
            response = await api.http.get(path, headers={"Last-Event-ID": header})
            assert response.status_code == 422
            assert response.headers["content-type"] == PROBLEM
            assert "Last-Event-ID" in response.json()["detail"]


async def test_every_position_a_client_sends_has_the_same_bound(
    database: str, tmp_path: Path
) -> None:
    too_far = str(2**53)
    async with serve(database, tmp_path) as api:
        stream = new_stream()
        refused = [
            await api.http.get("/v1/log", params={"after": too_far}),
            await api.http.get("/v1/subscribe", params={"after": too_far}),
            await api.http.get(f"/v1/streams/{stream}/events", params={"from_version": too_far}),
            await api.http.get(f"/v1/streams/{stream}/subscribe", params={"from_version": too_far}),
            await api.http.delete(f"/v1/streams/{stream}", params={"expected_version": too_far}),
        ]
        appended = await api.http.post(
            f"/v1/streams/{stream}/events",
            json={"expected_version": 2**53, "events": [{"type": "T", "data": {}}]},
        )
    assert [r.status_code for r in [*refused, appended]] == [422] * 6


async def test_category_and_type_filters_pick_events_before_and_after_going_live(
    database: str, tmp_path: Path
) -> None:
    shop, crm = new_category(), new_category()
    cart, person = new_stream(shop), new_stream(crm)
    added, removed = f"Added.{uuid.uuid4().hex[:8]}", f"Removed.{uuid.uuid4().hex[:8]}"
    async with serve(database, tmp_path) as api:
        await post_events(api.http, cart, event(0, added), event(1, removed))
        await post_events(api.http, person, event(2, added), sequenced=True)
        async with (
            api.subscribe(params={"category": shop}) as by_category,
            api.subscribe(params={"type": added}) as by_type,
            api.subscribe(params={"category": shop, "type": added}) as by_both,
        ):
            assert numbers(await by_category.messages_until("live")) == [0, 1]
            assert numbers(await by_type.messages_until("live")) == [0, 2]
            assert numbers(await by_both.messages_until("live")) == [0]
            await post_events(api.http, person, event(3, added), event(4, removed))
            await post_events(api.http, cart, event(5, removed), event(6, added))
            assert numbers(await by_category.messages(2)) == [5, 6]
            assert numbers(await by_type.messages(2)) == [3, 6]
            [both] = await by_both.messages(1)
            assert numbers([both]) == [6]
            assert (both.json()["stream_id"], both.json()["type"]) == (cart, added)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"after": -1}, "after"),
        ({"category": "a b"}, "category"),
        ({"type": "a b"}, "type"),
        ({"type": ""}, "type"),
    ],
)
async def test_a_subscription_with_bad_parameters_is_a_422(
    database: str, tmp_path: Path, params: dict[str, Any], says: str
) -> None:
    async with serve(database, tmp_path) as api:
        response = await api.http.get("/v1/subscribe", params=params)
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert says in response.json()["detail"]


# --- stream subscriptions --------------------------------------------------------------------


async def test_a_stream_subscription_starts_at_from_version_and_follows_only_that_stream(
    database: str, tmp_path: Path
) -> None:
    category = new_category()
    stream, sibling = new_stream(category), new_stream(category)
    async with serve(database, tmp_path) as api:
        for n in range(5):
            await post_events(api.http, stream, event(n))
            await post_events(api.http, sibling, event(100 + n), sequenced=True)
        path = f"/v1/streams/{stream}/subscribe"
        async with api.subscribe(path, params={"from_version": 2}) as sse:
            caught_up = await sse.messages_until("live")
            assert [f.json()["version"] for f in caught_up] == [2, 3, 4]
            assert {f.json()["stream_id"] for f in caught_up} == {stream}
            assert positions(caught_up) == sorted(positions(caught_up))
            await post_events(api.http, sibling, event(105))
            await post_events(api.http, stream, event(5))
            [live] = await sse.messages(1)
            assert (live.json()["stream_id"], live.json()["version"]) == (stream, 5)
            assert live.position > caught_up[-1].position
        resume = {"Last-Event-ID": caught_up[0].id or ""}
        async with api.subscribe(path, params={"from_version": 0}, headers=resume) as sse:
            assert [f.json()["version"] for f in await sse.messages_until("live")] == [3, 4, 5]


async def test_a_stream_subscription_from_the_start_reads_every_visible_event(
    database: str, tmp_path: Path
) -> None:
    stream = new_stream()
    async with serve(database, tmp_path) as api:
        await post_events(api.http, stream, *[event(n) for n in range(4)], sequenced=True)
        await api.http.put(f"/v1/streams/{stream}/metadata", json={"truncate_before": 1})
        async with api.subscribe(f"/v1/streams/{stream}/subscribe") as sse:
            assert numbers(await sse.messages_until("live")) == [1, 2, 3]


async def test_a_stream_subscription_of_a_stream_without_events_waits_for_its_first(
    database: str, tmp_path: Path
) -> None:
    stream = new_stream()
    async with (
        serve(database, tmp_path) as api,
        api.subscribe(f"/v1/streams/{stream}/subscribe") as sse,
    ):
        assert await sse.messages_until("live") == []
        await post_events(api.http, stream, event(1), event(2))
        first = await sse.messages(2)
        assert [f.json()["version"] for f in first] == [0, 1]
        assert numbers(first) == [1, 2]


async def test_a_stream_subscription_refuses_a_tombstoned_stream_and_bad_input(
    database: str, tmp_path: Path
) -> None:
    stream = new_stream()
    async with serve(database, tmp_path) as api:
        await post_events(api.http, stream, event(0))
        await api.http.delete(f"/v1/streams/{stream}", params={"hard": "true"})
        gone = await api.http.get(f"/v1/streams/{stream}/subscribe")
        assert gone.status_code == 410
        assert "tombstoned" in gone.json()["detail"]
        bad_version = await api.http.get(
            f"/v1/streams/{new_stream()}/subscribe", params={"from_version": -1}
        )
        assert bad_version.status_code == 422
        assert "from_version" in bad_version.json()["detail"]
        bad_id = await api.http.get("/v1/streams/semi;colon/subscribe")
        assert bad_id.status_code == 422
        assert "stream id" in bad_id.json()["detail"]


# --- heartbeats, slow clients ----------------------------------------------------------------


async def test_heartbeats_arrive_while_the_subscription_is_idle(
    database: str, tmp_path: Path
) -> None:
    async with (
        serve(database, tmp_path, event_store_sse_heartbeat_seconds=0.05) as api,
        api.subscribe(params={"category": new_category()}) as sse,
    ):
        assert await sse.messages_until("live") == []
        for _ in range(2):
            heartbeat = await sse.frame(max_wait=5)
            assert heartbeat.is_heartbeat
            assert heartbeat.comments == ["heartbeat"]


async def test_a_client_that_falls_behind_is_dropped_with_a_final_event_naming_where_to_resume(
    database: str, tmp_path: Path
) -> None:
    category = new_category()
    stream, params = new_stream(category), {"category": category}
    async with (
        serve(database, tmp_path, event_store_sse_max_buffered_events=10) as api,
        api.slow_client() as slow_client,
        api.subscribe(params=params, client=slow_client) as slow,
        api.subscribe(params=params) as keeping_up,
    ):
        assert await slow.messages_until("live") == []
        assert await keeping_up.messages_until("live") == []
        everything: list[int] = []
        for start in range(0, 300, 5):  # the slow client reads nothing meanwhile
            await write_padded(api, stream, 5, start)
            everything += positions(await keeping_up.messages(5))
        # the client keeping up has every event: the log tail offered each one to both
        received, controls, end = await rest_of(slow)
        assert isinstance(end, EndOfStream)  # the stream ended cleanly, after the final event
        [dropped] = controls
        assert dropped.event == "dropped"
        resume_after = dropped.json()["resume_after"]
        assert dropped.json() == {
            "reason": "the client fell more than 10 events behind",
            "resume_after": resume_after,
        }
        assert positions(received) == everything[: len(received)]
        assert resume_after == received[-1].position < everything[-1]
        resume = {"Last-Event-ID": str(resume_after)}
        async with api.subscribe(params=params, headers=resume) as resumed:
            rest = await resumed.messages_until("live")
        assert positions(received) + positions(rest) == everything


async def test_a_client_that_stops_reading_is_cut_off_after_the_send_timeout(
    database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    timeouts = {"service": "event-store", "route": "/v1/subscribe"}
    before_timeouts = REGISTRY.get_sample_value("outrigger_sse_send_timeouts_total", timeouts) or 0
    category = new_category()
    stream, params = new_stream(category), {"category": category}
    overrides = {
        "event_store_sse_max_buffered_events": 10,
        "event_store_sse_send_timeout_seconds": 0.2,
    }
    async with serve(database, tmp_path, **overrides) as api, api.slow_client() as slow_client:
        before = await open_subscriptions(api)
        async with api.subscribe(params=params, client=slow_client) as slow:
            assert await slow.messages_until("live") == []
            assert await open_subscriptions(api) == before + 1
            await write_padded(api, stream, 300)
            for _ in range(500):  # the server lets go of the subscription
                if await open_subscriptions(api) == before:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the subscription is still open")
            received, _, _ = await rest_of(slow)
        assert 0 < len(received) < 300
        assert numbers(received) == list(range(len(received)))
        # counted and logged as one warning line, not as a crash with a stack trace
        assert REGISTRY.get_sample_value("outrigger_sse_send_timeouts_total", timeouts) == (
            before_timeouts + 1
        )
        assert not [r for r in caplog.records if r.name.startswith("outrigger") and r.exc_info]
        assert any("the client read nothing for 0.2 s" in r.getMessage() for r in caplog.records)
        resume = {"Last-Event-ID": received[-1].id or ""}
        async with api.subscribe(params=params, headers=resume) as resumed:
            rest = await resumed.messages_until("live")
        assert numbers(received) + numbers(rest) == list(range(300))


# --- scopes ----------------------------------------------------------------------------------


async def test_subscribing_needs_the_events_read_scope(database: str, tmp_path: Path) -> None:
    async with serve(database, tmp_path) as api:
        writer = api.as_("events:write")
        for path in ("/v1/subscribe", f"/v1/streams/{new_stream()}/subscribe"):
            refused = await api.http.get(path, headers=writer)
            assert refused.status_code == 403
            assert refused.headers["content-type"] == PROBLEM
            assert refused.json()["required_scope"] == "events:read"
            anonymous = await api.http.get(path, headers={"Authorization": ""})
            assert anonymous.status_code == 401
        reader = api.as_("events:read")
        async with api.subscribe(params={"category": new_category()}, headers=reader) as sse:
            assert await sse.messages_until("live") == []
