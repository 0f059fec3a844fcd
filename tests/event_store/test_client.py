"""`EventStoreClient`, the Python SDK of the event store, against the service served for real.

Every test builds the app inline and serves it with uvicorn on a free port (subscriptions are
Server-Sent Events, which need a real connection), on the embedded and the PostgreSQL backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from outrigger.clients import (
    Appended,
    EventStoreClient,
    RecordedEvent,
    StreamMetadata,
    SyncEventStoreClient,
)
from outrigger.errors import (
    Conflict,
    ExternalServiceError,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    Unauthorized,
)
from outrigger.resilience import Policy, Retry
from outrigger.stealth import ERASED
from outrigger.telemetry.context import request_id_var
from outrigger.testing import bearer, free_port, serving, unique
from services.event_store.app import build_app
from tests.event_store.api_support import BACKENDS, database_for, settings_for
from tests.event_store.network_faults import CutFirstSubscription, LoseFirstResponse
from tests.event_store.suite import new_category, new_stream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from services.event_store.settings import EventStoreSettings

WAIT_SECONDS = 20.0


@dataclass
class Served:
    url: str
    settings: EventStoreSettings

    def client(
        self, *scopes: str, transport: httpx.AsyncBaseTransport | None = None
    ) -> EventStoreClient:
        token = bearer(self.settings, *scopes)["Authorization"].removeprefix("Bearer ")
        return EventStoreClient(
            self.url,
            token=token,
            policy=Policy(unique("event-store"), retry=Retry(3, base_delay=0.01, max_delay=0.05)),
            transport=transport,
        )


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_for(request.param, request, tmp_path)


@pytest.fixture
async def served(database: str, tmp_path: Path) -> AsyncIterator[Served]:
    settings = settings_for(database, tmp_path)
    async with serving(build_app(settings)) as url:
        yield Served(url, settings)


@pytest.fixture
async def events(served: Served) -> AsyncIterator[EventStoreClient]:
    async with served.client() as client:
        yield client


def placed(n: int, **fields: Any) -> dict[str, Any]:
    return {"type": "Placed", "data": {"n": n}, **fields}


async def taken(source: AsyncIterator[RecordedEvent], count: int) -> list[RecordedEvent]:
    """The next `count` events of a subscription."""
    received: list[RecordedEvent] = []
    async with asyncio.timeout(WAIT_SECONDS):
        while len(received) < count:
            received.append(await anext(source))
    return received


async def test_append_says_where_the_events_landed_and_reads_follow_next_both_ways(
    events: EventStoreClient,
) -> None:
    stream = new_stream()
    result = await events.append(
        stream, [placed(n) for n in range(5)], expected_version="no_stream"
    )
    assert result == Appended(stream, first_version=0, last_version=4, replayed=False)

    async def read_all(direction: str) -> list[int]:
        versions: list[int] = []
        from_version: int | None = None
        while True:
            page = await events.read_stream(
                stream, from_version=from_version, direction=direction, limit=2
            )
            versions += [event.version for event in page.events]
            assert (page.next is None) == (page.next_version is None)
            from_version = page.next_version
            if from_version is None:
                return versions

    assert await read_all("forward") == [0, 1, 2, 3, 4]
    assert await read_all("backward") == [4, 3, 2, 1, 0]
    page = await events.read_stream(stream, from_version=3)
    assert [(e.version, e.type, e.data) for e in page.events] == [
        (3, "Placed", {"n": 3}),
        (4, "Placed", {"n": 4}),
    ]
    event = page.events[0]
    assert (event.stream_id, event.metadata, event.schema_version) == (stream, {}, 1)
    assert isinstance(event.id, uuid.UUID)
    assert event.created.tzinfo is not None
    assert abs(datetime.now(UTC) - event.created) < timedelta(minutes=1)


async def test_a_stale_expected_version_raises_conflict_with_the_actual_version(
    events: EventStoreClient,
) -> None:
    stream = new_stream()
    await events.append(stream, [placed(0), placed(1)])
    with pytest.raises(Conflict) as conflict:
        await events.append(stream, [placed(2)], expected_version=0)
    assert conflict.value.extensions["actual_version"] == 1
    assert conflict.value.extensions["expected_version"] == 0
    assert conflict.value.extensions["stream_id"] == stream
    assert "is at 1" in conflict.value.detail
    with pytest.raises(Conflict):
        await events.append(stream, [placed(2)], expected_version="no_stream")
    assert (await events.stream_info(stream)).version == 1


async def test_resending_a_batch_with_its_ids_is_a_replay_answered_with_the_first_result(
    events: EventStoreClient,
) -> None:
    stream = new_stream()
    batch = [placed(n, id=str(uuid.uuid4())) for n in range(2)]
    first = await events.append(stream, batch, expected_version="no_stream")
    again = await events.append(stream, batch, expected_version="no_stream")
    assert first.replayed is False
    assert again == dataclasses.replace(first, replayed=True)
    page = await events.read_stream(stream)
    assert [str(event.id) for event in page.events] == [event["id"] for event in batch]
    with pytest.raises(Conflict, match=batch[0]["id"]):
        await events.append(stream, [{**batch[0], "data": {"n": "other"}}, batch[1]])


async def test_an_append_whose_answer_was_lost_is_sent_again_and_stored_once(
    served: Served,
) -> None:
    transport = LoseFirstResponse(lambda request: request.method == "POST")
    stream = new_stream()
    async with served.client(transport=transport) as events:
        result = await events.append(stream, [placed(0), placed(1)], expected_version="no_stream")
        page = await events.read_stream(stream)
    assert transport.lost == 1
    assert result == Appended(stream, first_version=0, last_version=1, replayed=True)
    assert [event.data for event in page.events] == [{"n": 0}, {"n": 1}]


async def test_stream_info_and_metadata_round_trip_and_reads_honour_retention(
    events: EventStoreClient,
) -> None:
    stream = new_stream()
    await events.append(stream, [placed(n) for n in range(4)])
    info = await events.set_metadata(stream, max_count=2, custom={"owner": "billing"})
    assert info.metadata == StreamMetadata(
        max_age=None, max_count=2, truncate_before=None, custom={"owner": "billing"}
    )
    described = await events.stream_info(stream)
    assert (described.stream_id, described.version) == (stream, 3)
    assert described.category == stream.split("-", 1)[0]
    assert described.metadata.custom == {"owner": "billing"}
    assert (described.deleted, described.tombstoned) == (False, False)
    assert described.created <= described.updated
    page = await events.read_stream(stream)
    assert [event.version for event in page.events] == [2, 3]
    cleared = await events.set_metadata(stream)
    assert cleared.metadata.max_count is None
    assert len((await events.read_stream(stream)).events) == 4


async def test_a_soft_delete_hides_the_stream_and_a_tombstone_makes_it_gone(
    events: EventStoreClient,
) -> None:
    stream = new_stream()
    await events.append(stream, [placed(0), placed(1)])
    await events.delete(stream, expected_version=1)
    assert (await events.stream_info(stream)).deleted is True
    assert (await events.read_stream(stream)).events == ()
    restarted = await events.append(stream, [placed(2)], expected_version="no_stream")
    assert restarted.first_version == 2

    with pytest.raises(Conflict):
        await events.delete(stream, hard=True, expected_version=0)
    await events.delete(stream, hard=True)
    assert (await events.stream_info(stream)).tombstoned is True
    with pytest.raises(Gone):
        await events.read_stream(stream)
    with pytest.raises(Gone):
        await events.append(stream, [placed(3)])
    with pytest.raises(Gone):
        await events.delete(stream)


async def test_the_log_pages_in_order_and_filters_by_category_and_type(
    events: EventStoreClient,
) -> None:
    category = new_category()
    await events.append(f"{category}-1", [placed(0), {"type": "Paid", "data": {}}])
    await events.append(f"{category}-2", [placed(1)])
    await events.append(new_stream(), [placed(2)])

    found: list[RecordedEvent] = []
    after = 0
    async with asyncio.timeout(WAIT_SECONDS):
        while len(found) < 3:  # PostgreSQL sequences appends a moment later
            page = await events.read_log(after=after, limit=2, category=category)
            found += page.events
            after = page.next_after
            if not page.events:
                await asyncio.sleep(0.01)
    assert [(e.stream_id, e.type) for e in found] == [
        (f"{category}-1", "Placed"),
        (f"{category}-1", "Paid"),
        (f"{category}-2", "Placed"),
    ]
    positions = [event.global_position or 0 for event in found]
    assert positions == sorted(positions)
    assert 0 not in positions
    paid = await events.read_log(category=category, event_type="Paid")
    assert [event.type for event in paid.events] == ["Paid"]
    first = await events.read_log(after=positions[0] - 1, limit=1)
    assert first.events[0].id == found[0].id
    assert first.next_after == positions[0]
    assert first.next.startswith("/v1/log?")


async def test_a_snapshot_is_saved_and_loaded_and_a_stream_without_one_gives_none(
    events: EventStoreClient,
) -> None:
    stream = new_stream()
    await events.append(stream, [placed(n) for n in range(3)])
    assert await events.load_snapshot(stream) is None
    saved = await events.save_snapshot(stream, 1, {"total": 1})
    assert (saved.stream_id, saved.version, saved.state) == (stream, 1, {"total": 1})
    await events.save_snapshot(stream, 2, {"total": 3})
    loaded = await events.load_snapshot(stream)
    assert loaded is not None
    assert (loaded.version, loaded.state) == (2, {"total": 3})
    assert loaded.created >= saved.created
    with pytest.raises(Conflict):
        await events.save_snapshot(stream, 9, {})
    with pytest.raises(NotFound):
        await events.save_snapshot(new_stream(), 0, {})


async def test_forgetting_a_subject_erases_its_sensitive_fields_for_good(
    events: EventStoreClient,
) -> None:
    stream = new_stream()
    subject = unique("user-")
    metadata = {"subject": subject, "sensitive": ["email"]}
    data = {"email": "ada@example.com", "plan": "pro"}
    await events.append(stream, [{"type": "SignedUp", "data": data, "metadata": metadata}])
    assert (await events.read_stream(stream)).events[0].data == data

    await events.forget_subject(subject)
    erased = (await events.read_stream(stream)).events[0].data
    assert erased == {"email": dict(ERASED), "plan": "pro"}
    await events.forget_subject(subject)  # idempotent


async def test_subscribe_catches_up_then_follows_new_events_live(
    events: EventStoreClient,
) -> None:
    category = new_category()
    await events.append(f"{category}-1", [placed(0), placed(1)])
    await events.append(new_stream(), [placed(99)])
    subscription = events.subscribe(category=category)
    async with contextlib.aclosing(subscription):
        caught_up = await taken(subscription, 2)
        await events.append(f"{category}-2", [placed(2)])
        (live,) = await taken(subscription, 1)
    assert [e.data["n"] for e in caught_up] == [0, 1]
    assert (live.stream_id, live.data) == (f"{category}-2", {"n": 2})
    assert (live.global_position or 0) > (caught_up[-1].global_position or 0) > 0

    stream = f"{category}-1"
    one = events.subscribe(stream_id=stream, from_version=1)
    async with contextlib.aclosing(one):
        (second,) = await taken(one, 1)
        await events.append(stream, [placed(3)])
        (third,) = await taken(one, 1)
    assert [(e.stream_id, e.version) for e in (second, third)] == [(stream, 1), (stream, 2)]


async def test_a_dropped_subscription_reconnects_and_resumes_after_the_last_event(
    served: Served,
) -> None:
    category = new_category()
    transport = CutFirstSubscription()
    async with served.client(transport=transport) as events:
        await events.append(f"{category}-1", [placed(n) for n in range(3)])
        subscription = events.subscribe(category=category, idle_timeout=5)
        async with contextlib.aclosing(subscription):
            received = await taken(subscription, 3)
            await events.append(f"{category}-1", [placed(3)])
            received += await taken(subscription, 1)
    assert [event.data["n"] for event in received] == [0, 1, 2, 3]
    first, again = transport.subscriptions
    assert "Last-Event-ID" not in first.headers
    assert again.headers["Last-Event-ID"] == str(received[0].global_position)


async def test_errors_the_service_answers_become_the_kits_exceptions(served: Served) -> None:
    stream = new_stream()
    async with served.client("events:read") as reader:
        with pytest.raises(Forbidden):
            await reader.append(stream, [placed(0)])
        with pytest.raises(NotFound):
            await reader.read_stream(stream)
        with pytest.raises(NotFound):
            await reader.stream_info(stream)
        with pytest.raises(InvalidInput, match="stream id"):
            await reader.read_stream("not a stream id")
        with pytest.raises(Forbidden):
            await reader.forget_subject("user-1")
    async with served.client("events:write") as writer:
        with pytest.raises(Forbidden):
            await anext(writer.subscribe())
    async with EventStoreClient(served.url, policy=Policy(unique("anonymous"))) as anonymous:
        with pytest.raises(Unauthorized):
            await anonymous.read_log()


async def test_a_subscription_to_a_tombstoned_stream_raises_gone(events: EventStoreClient) -> None:
    stream = new_stream()
    await events.append(stream, [placed(0)])
    await events.delete(stream, hard=True)
    with pytest.raises(Gone):
        await anext(events.subscribe(stream_id=stream))


async def test_an_unreachable_service_raises_external_service_error_also_when_subscribing() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with EventStoreClient(url, policy=Policy(unique("down"))) as events:
        with pytest.raises(ExternalServiceError, match=f"cannot reach {url}"):
            await events.append(new_stream(), [placed(0)])
        with pytest.raises(ExternalServiceError, match=f"cannot reach {url}"):
            await events.read_log()
        with pytest.raises(ExternalServiceError, match=f"cannot reach {url}"):
            await anext(events.subscribe())


class Recording(httpx.AsyncBaseTransport):
    """The network, remembering each request and how many response streams are still open."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []
        self.open_streams = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        self.open_streams += 1
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Counted(response, self),
            request=request,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Counted(httpx.AsyncByteStream):
    def __init__(self, response: httpx.Response, transport: Recording) -> None:
        self.response = response
        self.transport = transport

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.response.aiter_raw():
            yield chunk

    async def aclose(self) -> None:
        self.transport.open_streams -= 1
        await self.response.aclose()


def client_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "outrigger-event-store-client"]


async def test_the_blocking_client_appends_reads_and_follows_from_a_script(served: Served) -> None:
    stream = new_stream()
    token = bearer(served.settings)["Authorization"].removeprefix("Bearer ")

    def script() -> tuple[Appended, list[int], list[RecordedEvent], int]:
        with SyncEventStoreClient(served.url, token=token) as events:
            appended = events.append(stream, [placed(0), placed(1)], expected_version="no_stream")
            with pytest.raises(Conflict, match="is at 1"):
                events.append(stream, [placed(2)], expected_version="no_stream")
            versions = [event.version for event in events.read_stream(stream).events]
            following = events.subscribe(stream_id=stream)
            received = [next(following), next(following)]
            events.append(stream, [placed(2)], expected_version=1)
            received.append(next(following))  # live
            following.close()
            info = events.stream_info(stream)
            assert len(client_threads()) == 1
        return appended, versions, received, info.version or 0

    appended, versions, received, version = await asyncio.to_thread(script)
    assert appended == Appended(stream, first_version=0, last_version=1)
    assert versions == [0, 1]
    assert [(event.version, event.data) for event in received] == [
        (0, {"n": 0}),
        (1, {"n": 1}),
        (2, {"n": 2}),
    ]
    assert version == 2
    assert client_threads() == []


async def test_leaving_a_blocking_subscription_closes_its_connection_and_the_client_goes_on(
    served: Served,
) -> None:
    category = new_category()
    transport = Recording()
    token = bearer(served.settings)["Authorization"].removeprefix("Bearer ")

    def script() -> tuple[int, int, str | None]:
        with SyncEventStoreClient(served.url, token=token, transport=transport) as events:
            events.append(f"{category}-1", [placed(0), placed(1)])
            for event in events.subscribe(category=category):
                first = event.data["n"]
                break
            open_after_break = transport.open_streams
            token_var = request_id_var.set("script-request-7")
            try:
                events.read_log(category=category)
            finally:
                request_id_var.reset(token_var)
        return first, open_after_break, transport.requests[-1].headers.get("X-Request-ID")

    first, open_after_break, request_id = await asyncio.to_thread(script)
    assert first == 0
    assert open_after_break == 0  # the SSE response was closed by leaving the loop
    assert request_id == "script-request-7"  # the caller's context travels with the call
    assert client_threads() == []


async def test_a_blocking_client_says_what_went_wrong_like_the_async_one(served: Served) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    def script() -> None:
        with SyncEventStoreClient(url, policy=Policy(unique("down"))) as events:
            with pytest.raises(ExternalServiceError, match=f"cannot reach {url}"):
                events.read_log()
            with pytest.raises(ExternalServiceError, match=f"cannot reach {url}"):
                next(events.subscribe())
        anonymous = SyncEventStoreClient(served.url, policy=Policy(unique("anon")))
        with anonymous, pytest.raises(Unauthorized, match="missing bearer token"):
            anonymous.append(new_stream(), [placed(0)])
        with pytest.raises(RuntimeError, match="closed"):
            anonymous.read_log()

    await asyncio.to_thread(script)


def test_a_blocking_client_nobody_closed_stops_its_thread_once_collected() -> None:
    events = SyncEventStoreClient(f"http://127.0.0.1:{free_port()}")
    assert len(client_threads()) == 1
    del events
    gc.collect()
    assert client_threads() == []
