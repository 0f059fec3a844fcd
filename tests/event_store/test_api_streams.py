"""The stream routes over HTTP, on the embedded and the PostgreSQL backend: appends, retries,
conflicts, reads with their `next` link, metadata, deletes and tombstones, scopes."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.event_store.api_support import (
    PROBLEM,
    Api,
    append,
    event,
)
from tests.event_store.suite import new_stream

if TYPE_CHECKING:
    pass


async def test_append_answers_201_with_the_versions_and_reads_return_the_events(api: Api) -> None:
    stream = new_stream()
    created = await append(api, stream, event(0), event(1), expected="no_stream")
    assert created.status_code == 201
    assert created.json() == {"stream_id": stream, "first_version": 0, "last_version": 1}
    page = (await api.http.get(f"/v1/streams/{stream}/events")).json()
    assert [(e["version"], e["type"], e["data"]) for e in page["events"]] == [
        (0, "Happened", {"n": 0}),
        (1, "Happened", {"n": 1}),
    ]
    assert page["next"] is None
    assert page["next_version"] is None
    assert uuid.UUID(page["events"][0]["id"])


async def test_pages_link_to_the_next_page_both_ways(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, *[event(n) for n in range(5)])
    first = await api.http.get(f"/v1/streams/{stream}/events", params={"limit": 2})
    body = first.json()
    assert [e["version"] for e in body["events"]] == [0, 1]
    assert body["next_version"] == 2
    assert first.headers["Link"] == f'<{body["next"]}>; rel="next"'
    versions = [e["version"] for e in body["events"]]
    while body["next"]:
        body = (await api.http.get(body["next"])).json()
        versions += [e["version"] for e in body["events"]]
    assert versions == [0, 1, 2, 3, 4]
    back = await api.http.get(
        f"/v1/streams/{stream}/events", params={"direction": "backward", "limit": 3}
    )
    assert [e["version"] for e in back.json()["events"]] == [4, 3, 2]
    assert "direction=backward" in back.json()["next"]


async def test_a_retry_with_the_same_ids_is_answered_200_with_the_first_result(api: Api) -> None:
    stream = new_stream()
    batch = [event(n, id=str(uuid.uuid4())) for n in range(3)]
    first = await append(api, stream, *batch, expected="no_stream")
    again = await append(api, stream, *batch, expected="no_stream")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    info = (await api.http.get(f"/v1/streams/{stream}")).json()
    assert info["version"] == 2


async def test_the_same_ids_with_other_content_are_a_409_naming_the_id(api: Api) -> None:
    stream = new_stream()
    sent = event(0, id=str(uuid.uuid4()))
    await append(api, stream, sent)
    response = await append(api, stream, {**sent, "data": {"n": 99}})
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["event_id"] == sent["id"]


async def test_a_wrong_expected_version_is_a_409_with_the_actual_version(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, event(0), event(1))
    response = await append(api, stream, event(2), expected=0)
    assert response.status_code == 409
    problem = response.json()
    assert (problem["expected_version"], problem["actual_version"]) == (0, 1)
    assert f'stream "{stream}" is at 1' in problem["detail"]
    assert (await append(api, stream, event(2), expected=1)).status_code == 201


BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("unknown expected_version", {"expected_version": "latest"}, 422, "expected_version"),
    ("negative expected_version", {"expected_version": -1}, 422, "expected_version"),
    ("1,001 events", {"events": [event(n) for n in range(1001)]}, 422, "at most 1000"),
    ("no events", {"events": []}, 422, "at least 1"),
    ("an event without a type", {"events": [{"data": {}}]}, 422, "events.0.type"),
    ("an event without data", {"events": [{"type": "T"}]}, 422, "events.0.data"),
    ("a type with a space", {"events": [{"type": "a b", "data": 1}]}, 422, "pattern"),
    ("an unknown field", {"events": [{"type": "T", "data": 1, "dta": 2}]}, 422, "dta"),
    ("schema_version 0", {"events": [event(schema_version=0)]}, 422, "schema_version"),
    ("a bad id", {"events": [event(id="not-a-uuid")]}, 422, "events.0.id"),
    ("duplicate ids", {"events": [event(id=str(uuid.UUID(int=7)))] * 2}, 422, "duplicate"),
    ("a bad sensitive path", {"events": [event(metadata={"sensitive": ["a..b"]})]}, 422, "path"),
]


@pytest.mark.parametrize(
    ("body", "status", "says"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
async def test_bad_input_is_a_problem_that_changes_nothing(
    api: Api, body: dict[str, Any], status: int, says: str
) -> None:
    stream = new_stream()
    await append(api, stream, event(0))
    response = await api.http.post(
        f"/v1/streams/{stream}/events", json={"events": [event(1)], **body}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert says in response.text
    assert (await api.http.get(f"/v1/streams/{stream}")).json()["version"] == 0


async def test_a_body_that_is_not_json_is_a_400_that_changes_nothing(api: Api) -> None:
    stream = new_stream()
    response = await api.http.post(
        f"/v1/streams/{stream}/events",
        content=b'{"events": [',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "the request body is not valid JSON"
    assert (await api.http.get(f"/v1/streams/{stream}")).status_code == 404


@pytest.mark.parametrize("stream_id", ["has space", "semi;colon", "x" * 201, "émile"])
async def test_a_bad_stream_id_is_a_422_naming_the_rule(api: Api, stream_id: str) -> None:
    response = await append(api, stream_id, event(0))
    assert response.status_code == 422
    assert "stream id must be 1-200 characters" in response.json()["detail"]


async def test_metadata_is_honoured_on_reads_and_audited(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, *[event(n) for n in range(6)])
    metadata = {"max_count": 3, "truncate_before": 4, "custom": {"owner": "billing"}}
    response = await api.http.put(f"/v1/streams/{stream}/metadata", json=metadata)
    assert response.status_code == 200
    assert response.json()["metadata"] == {"max_age": None, **metadata}
    page = (await api.http.get(f"/v1/streams/{stream}/events")).json()
    assert [e["version"] for e in page["events"]] == [4, 5]
    [record] = await api.audit.wait(1)
    assert record.routing_key == "event-store.metadata_changed"
    assert record.event.data["resource"] == stream
    assert record.event.data["data"]["custom"] == {"owner": "billing"}
    bad = await api.http.put(f"/v1/streams/{stream}/metadata", json={"max_count": 0})
    assert bad.status_code == 422


async def test_a_soft_delete_hides_events_until_an_append_restarts_the_stream(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, event(0), event(1))
    assert (await api.http.delete(f"/v1/streams/{stream}")).status_code == 204
    assert (await api.http.get(f"/v1/streams/{stream}/events")).json()["events"] == []
    assert (await api.http.get(f"/v1/streams/{stream}")).json()["deleted"] is True
    restarted = await append(api, stream, event(2), expected="no_stream")
    assert restarted.json()["first_version"] == 2
    page = (await api.http.get(f"/v1/streams/{stream}/events")).json()
    assert [e["version"] for e in page["events"]] == [2]
    [record] = await api.audit.wait(1)
    assert record.routing_key == "event-store.stream_deleted"
    assert record.event.data["actor"] == "tester"


async def test_a_tombstoned_stream_answers_410_for_good(api: Api) -> None:
    stream = new_stream()
    await append(api, stream, event(0))
    deleted = await api.http.delete(
        f"/v1/streams/{stream}",
        params={"hard": "true", "expected_version": "0"},
        headers=api.as_("events:write", subject="ops"),
    )
    assert deleted.status_code == 204
    for response in (
        await append(api, stream, event(1)),
        await api.http.get(f"/v1/streams/{stream}/events"),
        await api.http.delete(f"/v1/streams/{stream}"),
    ):
        assert response.status_code == 410
        assert "tombstoned" in response.json()["detail"]
    assert (await api.http.get(f"/v1/streams/{stream}")).json()["tombstoned"] is True
    [record] = await api.audit.wait(1)
    assert record.routing_key == "event-store.stream_tombstoned"
    assert record.event.data["actor"] == "ops"


async def test_a_delete_with_a_wrong_expected_version_is_a_409_that_deletes_nothing(
    api: Api,
) -> None:
    stream = new_stream()
    await append(api, stream, event(0))
    response = await api.http.delete(f"/v1/streams/{stream}", params={"expected_version": "5"})
    assert response.status_code == 409
    assert (await api.http.get(f"/v1/streams/{stream}")).json()["deleted"] is False
    bad = await api.http.delete(f"/v1/streams/{stream}", params={"expected_version": "soon"})
    assert bad.status_code == 422
    assert api.audit.records == []


async def test_an_unknown_stream_is_a_404_saying_how_to_create_it(api: Api) -> None:
    response = await api.http.get(f"/v1/streams/{new_stream()}")
    assert response.status_code == 404
    assert "append to it to create it" in response.json()["detail"]


async def test_routes_need_a_token_with_their_scope(api: Api) -> None:
    stream = new_stream()
    path = f"/v1/streams/{stream}/events"
    body = {"events": [event(0)]}
    missing = await api.http.post(path, json=body, headers={"Authorization": ""})
    assert missing.status_code == 401
    reader = api.as_("events:read")
    refused = await api.http.post(path, json=body, headers=reader)
    assert refused.status_code == 403
    assert refused.json()["required_scope"] == "events:write"
    assert (await api.http.get(f"/v1/streams/{stream}")).status_code == 404  # nothing written
    written = await api.http.post(path, json=body, headers=api.as_("events:write"))
    assert written.status_code == 201
    assert (await api.http.get(path, headers=reader)).status_code == 200
    assert (await api.http.get(path, headers=api.as_("events:write"))).status_code == 403
    assert (await api.http.delete(f"/v1/streams/{stream}", headers=reader)).status_code == 403
