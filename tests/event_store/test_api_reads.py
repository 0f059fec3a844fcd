"""The read side over HTTP, on the embedded and the PostgreSQL backend: stream pages and their
`next` links, stream descriptions, retention metadata, deletes, the global log with its filters,
snapshots, and the 4xx problems of bad query parameters."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text

from outrigger.db import build_engine
from tests.event_store.api_support import (
    BACKENDS,
    PROBLEM,
    Api,
    append,
    event,
    running,
    settings_for,
)
from tests.event_store.fresh_database import fresh_database
from tests.event_store.suite import new_category, new_stream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    import httpx


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request.param, request, tmp_path) as url:
        yield url


@pytest.fixture
async def api_of_its_own(empty_database: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app on an empty database no other test writes to: its log starts at position 1."""
    async with running(settings_for(empty_database, tmp_path)) as api:
        yield api


async def versions(api: Api, stream_id: str, **params: Any) -> list[int]:
    response = await api.http.get(f"/v1/streams/{stream_id}/events", params=params)
    assert response.status_code == 200, response.text
    return [e["version"] for e in response.json()["events"]]


async def follow(api: Api, first: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every event of a paged read, following `next` to the end; and how many pages it took."""
    response = await api.http.get(first, params=params)
    events, pages = [], 1
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        events += body["events"]
        if body["next"] is None:
            assert "Link" not in response.headers
            return events, pages
        assert response.headers["Link"] == f'<{body["next"]}>; rel="next"'
        response = await api.http.get(body["next"])
        pages += 1


async def sequenced(api: Api, stream_id: str) -> list[dict[str, Any]]:
    """The stream's events once the sequencer has given each its global position."""
    async with asyncio.timeout(10):
        while True:
            page = await api.http.get(f"/v1/streams/{stream_id}/events", params={"limit": 1000})
            events: list[dict[str, Any]] = page.json()["events"]
            if all(e["global_position"] is not None for e in events):
                return events
            await asyncio.sleep(0.01)


async def whole_log(api: Api, limit: int = 1000, **filters: str) -> list[dict[str, Any]]:
    """The global log from the start, page by page through `next`, up to the head."""
    response = await api.http.get("/v1/log", params={"limit": limit, **filters})
    events: list[dict[str, Any]] = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        assert response.headers["Link"] == f'<{body["next"]}>; rel="next"'
        if not body["events"]:
            return events
        events += body["events"]
        response = await api.http.get(body["next"])


async def backdate(api: Api, stream_id: str, seconds: int) -> None:
    """Makes the stream's events `seconds` older (there is no clock to move)."""
    url = api.settings.database_url
    if url.startswith("postgresql"):
        change = "created_at - make_interval(secs => :seconds)"
    else:
        change = "created_at - :seconds * 1000000"  # microseconds since the epoch
    engine = build_engine(url, schemas=["event_store"])
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(f"UPDATE event_store.events SET created_at = {change} WHERE stream_id = :s"),
                {"seconds": seconds, "s": stream_id},
            )
    finally:
        await engine.dispose()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# --- stream pages --------------------------------------------------------------------------


async def test_following_next_forward_reads_every_event_once_in_version_order(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, *[event(n) for n in range(10)])
    events, pages = await follow(api, f"/v1/streams/{stream}/events", limit=3)
    assert [e["version"] for e in events] == list(range(10))
    assert [e["data"] for e in events] == [{"n": n} for n in range(10)]
    assert pages == 4


async def test_following_next_backward_reads_every_event_once_newest_first(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, *[event(n) for n in range(7)])
    events, pages = await follow(api, f"/v1/streams/{stream}/events", direction="backward", limit=2)
    assert [e["version"] for e in events] == [6, 5, 4, 3, 2, 1, 0]
    assert pages == 4


async def test_from_version_starts_the_read_at_that_version_in_either_direction(
    api: Api,
) -> None:
    stream = new_stream()
    await append(api, stream, *[event(n) for n in range(8)])
    forward = await api.http.get(
        f"/v1/streams/{stream}/events", params={"from_version": 4, "limit": 3}
    )
    assert [e["version"] for e in forward.json()["events"]] == [4, 5, 6]
    assert forward.json()["next_version"] == 7
    assert await versions(api, stream, from_version=4, direction="backward") == [4, 3, 2, 1, 0]
    assert await versions(api, stream, from_version=8) == []
    assert await versions(api, stream, from_version=99, direction="backward") == list(
        range(7, -1, -1)
    )


async def test_next_links_work_for_stream_ids_with_colons_and_dots(api: Api) -> None:
    stream = f"{new_category()}-order:7.eu"
    await append(api, stream, *[event(n) for n in range(5)])
    events, pages = await follow(api, f"/v1/streams/{stream}/events", limit=2)
    assert [e["version"] for e in events] == [0, 1, 2, 3, 4]
    assert {e["stream_id"] for e in events} == {stream}
    assert pages == 3


async def test_a_read_of_an_unknown_stream_is_a_404(api: Api) -> None:
    body = problem(await api.http.get(f"/v1/streams/{new_stream()}/events"), 404)
    assert "append to it to create it" in body["detail"]


async def test_events_carry_their_id_type_metadata_schema_and_global_position(
    api: Api,
) -> None:
    stream = new_stream()
    sent = event(1, "Shipped", metadata={"by": "ops"}, schema_version=2)
    await append(api, stream, sent)
    [read] = await sequenced(api, stream)
    assert (read["stream_id"], read["type"], read["data"]) == (stream, "Shipped", {"n": 1})
    assert (read["metadata"], read["schema_version"]) == ({"by": "ops"}, 2)
    assert read["global_position"] >= 1
    assert datetime.fromisoformat(read["created"]).tzinfo is not None


# --- describing a stream ---------------------------------------------------------------------


async def test_describing_a_stream_gives_its_version_times_metadata_and_flags(api: Api) -> None:
    category = new_category()
    stream = new_stream(category)
    await append(api, stream, event(0), event(1), event(2))
    first = (await api.http.get(f"/v1/streams/{stream}")).json()
    assert first["stream_id"] == stream
    assert first["category"] == category
    assert first["version"] == 2
    assert first["metadata"] == {
        "max_age": None,
        "max_count": None,
        "truncate_before": None,
        "custom": {},
    }
    assert (first["deleted"], first["tombstoned"]) == (False, False)
    created, updated = (datetime.fromisoformat(first[k]) for k in ("created", "updated"))
    assert created <= updated
    await append(api, stream, event(3))
    later = (await api.http.get(f"/v1/streams/{stream}")).json()
    assert later["version"] == 3
    assert datetime.fromisoformat(later["created"]) == created
    assert datetime.fromisoformat(later["updated"]) >= updated


# --- metadata --------------------------------------------------------------------------------


async def test_max_count_shows_only_the_last_events_in_both_directions(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, *[event(n) for n in range(6)])
    response = await api.http.put(f"/v1/streams/{stream}/metadata", json={"max_count": 2})
    assert response.json()["metadata"]["max_count"] == 2
    assert await versions(api, stream) == [4, 5]
    assert await versions(api, stream, from_version=0) == [4, 5]
    assert await versions(api, stream, direction="backward") == [5, 4]
    events, _ = await follow(api, f"/v1/streams/{stream}/events", direction="backward", limit=1)
    assert [e["version"] for e in events] == [5, 4]
    await append(api, stream, event(6))
    assert await versions(api, stream) == [5, 6]


async def test_truncate_before_hides_the_lower_versions(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, *[event(n) for n in range(6)])
    await api.http.put(f"/v1/streams/{stream}/metadata", json={"truncate_before": 3})
    assert await versions(api, stream) == [3, 4, 5]
    assert await versions(api, stream, direction="backward", from_version=4) == [4, 3]
    assert (await api.http.get(f"/v1/streams/{stream}")).json()["version"] == 5


async def test_max_age_hides_events_older_than_it(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, event(0), event(1))
    await backdate(api, stream, 3600)
    await append(api, stream, event(2))
    await api.http.put(f"/v1/streams/{stream}/metadata", json={"max_age": 600})
    assert await versions(api, stream) == [2]
    assert await versions(api, stream, direction="backward") == [2]
    await api.http.put(f"/v1/streams/{stream}/metadata", json={"max_age": 7200})
    assert await versions(api, stream) == [0, 1, 2]


async def test_new_metadata_replaces_the_old_and_custom_is_kept_as_given(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, *[event(n) for n in range(4)])
    await api.http.put(f"/v1/streams/{stream}/metadata", json={"max_count": 1})
    custom = {"owner": "billing", "tags": ["a", "b"], "nested": {"x": None}}
    replaced = await api.http.put(f"/v1/streams/{stream}/metadata", json={"custom": custom})
    assert replaced.status_code == 200
    assert replaced.json()["metadata"] == {
        "max_age": None,
        "max_count": None,
        "truncate_before": None,
        "custom": custom,
    }
    assert (await api.http.get(f"/v1/streams/{stream}")).json()["metadata"]["custom"] == custom
    assert await versions(api, stream) == [0, 1, 2, 3]


async def test_metadata_may_be_set_before_the_first_event(api: Api) -> None:
    stream = new_stream()
    response = await api.http.put(f"/v1/streams/{stream}/metadata", json={"max_count": 2})
    assert response.status_code == 200
    assert response.json()["version"] is None
    assert await versions(api, stream) == []
    await append(api, stream, *[event(n) for n in range(5)], expected="no_stream")
    assert await versions(api, stream) == [3, 4]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"max_count": 0}, "max_count"),
        ({"max_age": 0}, "max_age"),
        ({"truncate_before": -1}, "truncate_before"),
        ({"custom": [1]}, "custom"),
        ({"max_cnt": 2}, "max_cnt"),
    ],
)
async def test_bad_metadata_is_a_422_that_changes_nothing(
    api: Api, body: dict[str, Any], says: str
) -> None:
    stream = new_stream()
    await append(api, stream, *[event(n) for n in range(3)])
    await api.http.put(f"/v1/streams/{stream}/metadata", json={"max_count": 2})
    body_problem = problem(await api.http.put(f"/v1/streams/{stream}/metadata", json=body), 422)
    assert says in body_problem["detail"]
    assert (await api.http.get(f"/v1/streams/{stream}")).json()["metadata"]["max_count"] == 2


# --- deletes ---------------------------------------------------------------------------------


async def test_a_soft_deleted_stream_reads_empty_and_keeps_its_version(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, *[event(n) for n in range(3)])
    await api.http.put(f"/v1/streams/{stream}/snapshot", json={"version": 2, "state": {}})
    assert (await api.http.delete(f"/v1/streams/{stream}")).status_code == 204
    page = (await api.http.get(f"/v1/streams/{stream}/events")).json()
    assert (page["events"], page["next"]) == ([], None)
    assert await versions(api, stream, direction="backward") == []
    assert await versions(api, stream, from_version=0) == []
    info = (await api.http.get(f"/v1/streams/{stream}")).json()
    assert (info["deleted"], info["tombstoned"], info["version"]) == (True, False, 2)
    problem(await api.http.get(f"/v1/streams/{stream}/snapshot"), 404)
    assert (await api.http.delete(f"/v1/streams/{stream}")).status_code == 204  # again: no-op


async def test_an_append_restarts_a_soft_deleted_stream_after_its_last_version(
    api: Api,
) -> None:
    stream = new_stream()
    await append(api, stream, event(0), event(1))
    await api.http.delete(f"/v1/streams/{stream}")
    problem(await append(api, stream, event(2), expected=1), 409)
    problem(await append(api, stream, event(2), expected="stream_exists"), 409)
    restarted = await append(api, stream, event(2), event(3), expected="no_stream")
    assert restarted.status_code == 201
    assert restarted.json()["first_version"] == 2
    assert await versions(api, stream) == [2, 3]
    assert await versions(api, stream, from_version=0, direction="forward") == [2, 3]
    info = (await api.http.get(f"/v1/streams/{stream}")).json()
    assert (info["deleted"], info["version"]) == (False, 3)


async def test_a_delete_of_an_unknown_stream_is_a_404(api: Api) -> None:
    problem(await api.http.delete(f"/v1/streams/{new_stream()}"), 404)


async def test_a_tombstone_refuses_every_later_write_and_read_with_410(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, event(0), event(1))
    tombstoned = await api.http.delete(f"/v1/streams/{stream}", params={"hard": "true"})
    assert tombstoned.status_code == 204
    refused = [
        await append(api, stream, event(2), expected="no_stream"),
        await append(api, stream, event(2)),
        await api.http.get(f"/v1/streams/{stream}/events"),
        await api.http.get(f"/v1/streams/{stream}/events", params={"direction": "backward"}),
        await api.http.put(f"/v1/streams/{stream}/metadata", json={"max_count": 1}),
        await api.http.put(f"/v1/streams/{stream}/snapshot", json={"version": 1, "state": 1}),
        await api.http.delete(f"/v1/streams/{stream}", params={"hard": "true"}),
    ]
    for response in refused:
        assert "tombstoned" in problem(response, 410)["detail"]
    info = (await api.http.get(f"/v1/streams/{stream}")).json()
    assert (info["tombstoned"], info["deleted"], info["version"]) == (True, True, 1)


async def test_hard_deleting_a_stream_that_never_existed_is_404_and_reserves_nothing(
    api: Api,
) -> None:
    stream = new_stream()
    gone = await api.http.delete(f"/v1/streams/{stream}", params={"hard": "true"})
    assert "does not exist" in problem(gone, 404)["detail"]
    assert (await append(api, stream, event(0), expected="no_stream")).status_code == 201
    assert api.audit.actions == []  # nothing was deleted, nothing to audit


async def test_deleted_and_tombstoned_streams_stay_in_the_global_log(api: Api) -> None:
    category = new_category()
    soft, hard = new_stream(category), new_stream(category)
    await append(api, soft, event(0))
    await append(api, hard, event(1))
    expected = [e["id"] for e in await sequenced(api, soft) + await sequenced(api, hard)]
    await api.http.delete(f"/v1/streams/{soft}")
    await api.http.delete(f"/v1/streams/{hard}", params={"hard": "true"})
    assert [e["id"] for e in await whole_log(api, category=category)] == expected


# --- the global log --------------------------------------------------------------------------


async def test_the_log_holds_every_event_at_contiguous_positions_from_1(
    api_of_its_own: Api,
) -> None:
    api = api_of_its_own
    one, two = new_stream(), new_stream()
    for n in range(4):
        await append(api, one, event(n))
        await append(api, two, event(n), event(n + 10))
    await sequenced(api, one)
    await sequenced(api, two)
    log = await whole_log(api, limit=5)
    assert [e["global_position"] for e in log] == list(range(1, 13))
    assert [(e["stream_id"], e["data"]["n"]) for e in log] == [
        pair
        for n in range(4)
        for pair in [(one, n), (two, n), (two, n + 10)]
    ]  # fmt: skip


async def test_the_log_pages_by_after_and_says_where_to_continue(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, *[event(n) for n in range(5)])
    positions = [e["global_position"] for e in await sequenced(api, stream)]
    page = await api.http.get("/v1/log", params={"after": positions[0], "limit": 2})
    body = page.json()
    assert [e["global_position"] for e in body["events"]] == positions[1:3]
    assert body["next_after"] == positions[2]
    assert body["next"] == f"/v1/log?after={positions[2]}&limit=2"
    assert page.headers["Link"] == f'<{body["next"]}>; rel="next"'
    beyond = (await api.http.get("/v1/log", params={"after": 10**12})).json()
    assert (beyond["events"], beyond["next_after"]) == ([], 10**12)


async def test_the_log_filters_by_category_and_by_type(api: Api) -> None:
    shop, crm = new_category(), new_category()
    carts, orders, people = new_stream(shop), new_stream(shop), new_stream(crm)
    await append(api, carts, event(0, "Added"), event(1, "Removed"), event(2, "Added"))
    renamed = f"Renamed.{uuid.uuid4().hex[:8]}"  # a type no other test uses
    await append(api, people, event(3, "Added"), event(4, renamed))
    await append(api, orders, event(5, "Placed"), event(6, "Added"))
    for stream in (carts, people, orders):
        await sequenced(api, stream)

    def numbers(events: list[dict[str, Any]]) -> list[int]:
        positions = [e["global_position"] for e in events]
        assert positions == sorted(positions)
        return [e["data"]["n"] for e in events]

    assert numbers(await whole_log(api, category=shop)) == [0, 1, 2, 5, 6]
    assert numbers(await whole_log(api, limit=2, category=shop)) == [0, 1, 2, 5, 6]
    assert numbers(await whole_log(api, category=crm)) == [3, 4]
    assert numbers(await whole_log(api, category=shop, type="Added")) == [0, 2, 6]
    assert numbers(await whole_log(api, limit=1, type=renamed)) == [4]


async def test_a_filtered_log_read_with_no_match_continues_from_the_head(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, event(0))
    [written] = await sequenced(api, stream)
    response = await api.http.get("/v1/log", params={"category": new_category()})
    body = response.json()
    assert body["events"] == []
    assert body["next_after"] >= written["global_position"]
    assert f"after={body['next_after']}" in body["next"]
    assert "category=" in body["next"]


# --- snapshots -------------------------------------------------------------------------------


async def test_a_stream_has_no_snapshot_until_one_is_saved(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, event(0))
    body = problem(await api.http.get(f"/v1/streams/{stream}/snapshot"), 404)
    assert "has no snapshot" in body["detail"]


async def test_a_saved_snapshot_reads_back_and_the_latest_replaces_the_previous(
    api: Api,
) -> None:
    stream = new_stream()
    await append(api, stream, *[event(n) for n in range(5)])
    saved = await api.http.put(
        f"/v1/streams/{stream}/snapshot", json={"version": 1, "state": {"total": 1}}
    )
    assert saved.status_code == 200
    assert saved.json()["version"] == 1
    loaded = (await api.http.get(f"/v1/streams/{stream}/snapshot")).json()
    assert (loaded["stream_id"], loaded["version"], loaded["state"]) == (stream, 1, {"total": 1})
    assert loaded == saved.json()
    state = {"total": 10, "lines": [1, 2, 3], "note": None}
    await api.http.put(f"/v1/streams/{stream}/snapshot", json={"version": 4, "state": state})
    latest = (await api.http.get(f"/v1/streams/{stream}/snapshot")).json()
    assert (latest["version"], latest["state"]) == (4, state)


async def test_a_snapshot_must_be_of_a_version_the_stream_has(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, event(0), event(1))
    await api.http.put(f"/v1/streams/{stream}/snapshot", json={"version": 1, "state": "one"})
    past = await api.http.put(f"/v1/streams/{stream}/snapshot", json={"version": 2, "state": 2})
    assert problem(past, 409)["actual_version"] == 1
    problem(
        await api.http.put(f"/v1/streams/{stream}/snapshot", json={"version": -1, "state": 2}), 422
    )
    problem(await api.http.put(f"/v1/streams/{stream}/snapshot", json={"state": 2}), 422)
    unknown = new_stream()
    problem(
        await api.http.put(f"/v1/streams/{unknown}/snapshot", json={"version": 0, "state": 0}), 404
    )
    assert (await api.http.get(f"/v1/streams/{stream}/snapshot")).json()["state"] == "one"


async def test_a_snapshot_of_a_version_from_before_a_soft_delete_is_refused(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, event(0), event(1))
    await api.http.delete(f"/v1/streams/{stream}")
    problem(
        await api.http.put(f"/v1/streams/{stream}/snapshot", json={"version": 1, "state": 1}), 404
    )
    await append(api, stream, event(2), expected="no_stream")
    saved = await api.http.put(
        f"/v1/streams/{stream}/snapshot", json={"version": 2, "state": "new"}
    )
    assert saved.status_code == 200
    stale = await api.http.put(
        f"/v1/streams/{stream}/snapshot", json={"version": 1, "state": "old"}
    )
    assert "deleted" in problem(stale, 409)["detail"]
    loaded = (await api.http.get(f"/v1/streams/{stream}/snapshot")).json()
    assert (loaded["version"], loaded["state"]) == (2, "new")


async def test_snapshots_need_their_scopes(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, event(0))
    path = f"/v1/streams/{stream}/snapshot"
    refused = await api.http.put(
        path, json={"version": 0, "state": 0}, headers=api.as_("events:read")
    )
    assert problem(refused, 403)["required_scope"] == "events:write"
    problem(await api.http.get(path, headers=api.as_("events:read")), 404)
    saved = await api.http.put(
        path, json={"version": 0, "state": 0}, headers=api.as_("events:write")
    )
    assert saved.status_code == 200
    assert (
        problem(await api.http.get(path, headers=api.as_("events:write")), 403)["required_scope"]
        == "events:read"
    )


# --- bad query parameters --------------------------------------------------------------------

BAD_READS: list[tuple[str, str, dict[str, Any], str]] = [
    ("limit 0", "/v1/streams/{s}/events", {"limit": 0}, "limit"),
    ("limit 1001", "/v1/streams/{s}/events", {"limit": 1001}, "limit"),
    ("limit not a number", "/v1/streams/{s}/events", {"limit": "ten"}, "limit"),
    ("direction sideways", "/v1/streams/{s}/events", {"direction": "sideways"}, "direction"),
    ("from_version -1", "/v1/streams/{s}/events", {"from_version": -1}, "from_version"),
    ("a bad stream id", "/v1/streams/no%20spaces/events", {}, "stream id"),
    ("a bad stream id described", "/v1/streams/semi;colon", {}, "stream id"),
    ("a bad stream id snapshot", "/v1/streams/semi;colon/snapshot", {}, "stream id"),
    ("log after -1", "/v1/log", {"after": -1}, "after"),
    ("log limit 0", "/v1/log", {"limit": 0}, "limit"),
    ("log limit 10,001", "/v1/log", {"limit": 10_001}, "limit"),
    ("log bad category", "/v1/log", {"category": "a b"}, "category"),
    ("log bad type", "/v1/log", {"type": "a\tb"}, "type"),
]


@pytest.mark.parametrize(
    ("path", "params", "says"), [c[1:] for c in BAD_READS], ids=[c[0] for c in BAD_READS]
)
async def test_bad_query_parameters_are_a_422_problem_naming_them(
    api: Api, path: str, params: dict[str, Any], says: str
) -> None:
    stream = new_stream()
    await append(api, stream, event(0))
    body = problem(await api.http.get(path.format(s=stream), params=params), 422)
    assert says in body["detail"]
