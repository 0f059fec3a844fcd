"""The domain rules, without any database."""

from __future__ import annotations

import uuid

import pytest

from outrigger.errors import Conflict, InvalidInput
from services.event_store.domain import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    EventData,
    StreamMetadata,
    StreamState,
    category,
    check_stream_id,
    event_id_conflict,
    expectation_failure,
    parse_expected_version,
    version_conflict,
    visible_from,
)
from services.event_store.domain.rules import check_events


def test_the_category_is_the_part_before_the_first_dash() -> None:
    assert category("order-7-b") == "order"
    assert category("order") == "order"
    assert check_stream_id("a.b:c_d-1") == "a.b:c_d-1"


@pytest.mark.parametrize(
    ("wire", "parsed"),
    [("any", ANY), ("no_stream", NO_STREAM), ("stream_exists", STREAM_EXISTS), (0, 0), (7, 7)],
)
def test_expected_versions_parse_from_the_wire(wire: object, parsed: object) -> None:
    assert parse_expected_version(wire) == parsed
    assert str(StreamState.ANY) == "any"


@pytest.mark.parametrize(
    ("expected", "version", "deleted", "actual"),
    [
        (ANY, None, False, "ok"),
        (ANY, 3, True, "ok"),
        (NO_STREAM, None, False, "ok"),
        (NO_STREAM, 3, True, "ok"),
        (NO_STREAM, 3, False, 3),
        (STREAM_EXISTS, 0, False, "ok"),
        (STREAM_EXISTS, None, False, None),
        (STREAM_EXISTS, 3, True, None),
        (3, 3, False, "ok"),
        (3, 4, False, 4),
        (3, 3, True, None),
        (0, None, False, None),
    ],
)
def test_when_an_expectation_holds(
    expected: StreamState | int, version: int | None, deleted: bool, actual: object
) -> None:
    conflict = expectation_failure("s-1", expected, version, deleted=deleted)
    if actual == "ok":
        assert conflict is None
    else:
        assert conflict is not None
        assert conflict.extensions["actual_version"] == actual


def test_conflict_details_say_what_to_do() -> None:
    assert version_conflict("order-7", 4, 6).detail == (
        'expected_version 4 but stream "order-7" is at 6; read its new events, then retry with '
        "expected_version 6"
    )
    assert "does not exist" in version_conflict("order-7", STREAM_EXISTS, None).detail
    deleted = version_conflict("order-7", 6, 6, deleted=True)
    assert "was deleted (its last version was 6)" in deleted.detail
    assert deleted.extensions["actual_version"] is None
    event_id = uuid.uuid4()
    clash = event_id_conflict(event_id, "order-7", 2)
    assert isinstance(clash, Conflict)
    assert str(event_id) in clash.detail


def test_visible_from_combines_deletes_truncation_and_max_count() -> None:
    assert visible_from(9, StreamMetadata(), 0) == 0
    assert visible_from(9, StreamMetadata(max_count=3), 0) == 7
    assert visible_from(9, StreamMetadata(max_count=3, truncate_before=8), 0) == 8
    assert visible_from(9, StreamMetadata(max_count=30), 5) == 5
    assert visible_from(None, StreamMetadata(max_count=3), 0) == 0


def test_every_bad_event_is_reported_with_its_place() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_events([EventData("ok", {}), EventData("bad type", {}, schema_version=0)])
    assert [e["loc"] for e in caught.value.errors or []] == [
        ["events", 1, "type"],
        ["events", 1, "schema_version"],
    ]
    assert caught.value.detail.startswith("events[1].type:")
