"""The rules every adapter applies: what valid input is, and when an append may go ahead."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from outrigger.errors import InvalidInput
from services.event_store.domain.errors import version_conflict
from services.event_store.domain.models import EventData, StreamMetadata, StreamState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from outrigger.errors import Conflict
    from services.event_store.domain.models import ExpectedVersion

MAX_EVENTS_PER_APPEND = 1000
MAX_READ_LIMIT = 1000
MAX_LOG_READ_LIMIT = 10_000
MAX_NAME_LENGTH = 200
# Versions and positions: PostgreSQL bigints, bounded to what every JSON reader keeps exactly
# (I-JSON, RFC 7493), so a client never sends a number the service reads as another.
MAX_POSITION = 2**53 - 1
MAX_AGE_SECONDS = 10**10  # about 317 years

NAME_PATTERN = r"^[A-Za-z0-9_.:\-]{1,200}$"
"""Stream ids, categories and checkpoint names."""
# No control character and no whitespace, spelled out so that Python and JSON Schema (ECMA-262)
# regular expressions read it the same (their `\s` differ).
EVENT_TYPE_PATTERN = (
    r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]{1,200}$"
)
_STREAM_ID = re.compile(NAME_PATTERN)
_EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN)
_NAME = _STREAM_ID


def category(stream_id: str) -> str:
    """The part of the stream id before the first `-` (all of it when there is none)."""
    return stream_id.split("-", 1)[0]


def check_stream_id(stream_id: object) -> str:
    if not isinstance(stream_id, str) or not _STREAM_ID.fullmatch(stream_id):
        raise InvalidInput(
            f"stream id must be 1-200 characters of A-Z a-z 0-9 _ . : - (got {stream_id!r})"
        )
    return stream_id


def check_name(what: str, name: object) -> str:
    """Checkpoint names, categories: the same alphabet as stream ids."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(f"{what} must be 1-200 characters of A-Z a-z 0-9 _ . : - (got {name!r})")
    return name


def check_subject(subject: object) -> str:
    """A data subject (whose personal data events hold): 1-200 characters."""
    if not isinstance(subject, str) or not 1 <= len(subject) <= MAX_NAME_LENGTH:
        raise InvalidInput(f"subject must be 1-200 characters (got {str(subject)[:80]!r})")
    return subject


def check_event_type(event_type: object, where: str = "type") -> str:
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise InvalidInput(
            f"{where} must be 1-200 characters without spaces or control characters "
            f"(got {event_type!r})"
        )
    return event_type


def parse_expected_version(value: object) -> ExpectedVersion:
    """`"any"`, `"no_stream"`, `"stream_exists"` or a version >= 0, as sent by a client."""
    if isinstance(value, StreamState):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_POSITION:
        return value
    if isinstance(value, str) and value in StreamState._value2member_map_:
        return StreamState(value)
    raise InvalidInput(
        'expected_version must be "any", "no_stream", "stream_exists" or a version from 0 to '
        f"2**53 - 1 (got {value!r})"
    )


def check_non_negative(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_POSITION:
        raise InvalidInput(f"{name} must be an integer from 0 to 2**53 - 1 (got {value!r})")
    return value


def check_limit(limit: object, maximum: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= maximum:
        raise InvalidInput(f"limit must be between 1 and {maximum} (got {limit!r})")
    return limit


def check_append(
    stream_id: object, events: Sequence[EventData], expected_version: object
) -> ExpectedVersion:
    """Validates an append's input; returns the parsed expected version."""
    check_stream_id(stream_id)
    check_events(events)
    return parse_expected_version(expected_version)


def check_stream_read(
    stream_id: object, from_version: object, direction: object, limit: object
) -> None:
    check_stream_id(stream_id)
    check_limit(limit, MAX_READ_LIMIT)
    if from_version is not None:
        check_non_negative("from_version", from_version)
    if direction not in ("forward", "backward"):
        raise InvalidInput(f'direction must be "forward" or "backward" (got {direction!r})')


def check_log_read(
    after_position: object, limit: object, category: object, event_type: object
) -> None:
    check_non_negative("after_position", after_position)
    check_limit(limit, MAX_LOG_READ_LIMIT)
    if category is not None:
        check_name("category", category)
    if event_type is not None:
        check_event_type(event_type, "event_type")


def check_events(events: Sequence[EventData]) -> None:
    """1-1,000 well-formed events with distinct ids, or `InvalidInput` naming each bad one."""
    if not 1 <= len(events) <= MAX_EVENTS_PER_APPEND:
        raise InvalidInput(
            f"an append takes 1 to {MAX_EVENTS_PER_APPEND} events (got {len(events)}); "
            "split larger batches"
        )
    problems: list[dict[str, Any]] = []
    seen: set[uuid.UUID] = set()
    for index, event in enumerate(events):
        for field, message in _event_problems(event):
            problems.append({"loc": ["events", index, field], "msg": message})
        if event.id in seen:
            problems.append({"loc": ["events", index, "id"], "msg": f"duplicate id {event.id}"})
        seen.add(event.id)
    if problems:
        first = problems[0]
        raise InvalidInput(
            f"events[{first['loc'][1]}].{first['loc'][2]}: {first['msg']}", errors=problems
        )


def _event_problems(event: object) -> list[tuple[str, str]]:
    if not isinstance(event, EventData):
        return [("event", f"must be an EventData, not {type(event).__name__}")]
    found: list[tuple[str, str]] = []
    if not isinstance(event.id, uuid.UUID):
        found.append(("id", f"must be a UUID (got {event.id!r})"))
    if not isinstance(event.type, str) or not _EVENT_TYPE.fullmatch(event.type):
        found.append(("type", "must be 1-200 characters without spaces or control characters"))
    version = event.schema_version
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**31:
        found.append(("schema_version", f"must be an integer >= 1 (got {version!r})"))
    metadata = event.metadata
    if not isinstance(metadata, dict):
        found.append(("metadata", "must be a JSON object"))
        return found
    subject = metadata.get("subject")
    if subject is not None and (not isinstance(subject, str) or not 1 <= len(subject) <= 200):
        found.append(("metadata", "subject must be a string of 1-200 characters"))
    sensitive = metadata.get("sensitive")
    if sensitive is not None and (
        not isinstance(sensitive, list) or not all(isinstance(p, str) and p for p in sensitive)
    ):
        found.append(("metadata", "sensitive must be a list of field paths (strings)"))
    return found


def check_metadata(metadata: StreamMetadata) -> StreamMetadata:
    for name, maximum in (("max_age", MAX_AGE_SECONDS), ("max_count", MAX_POSITION)):
        value = getattr(metadata, name)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum
        ):
            raise InvalidInput(
                f"{name} must be an integer from 1 to {maximum} or null (got {value!r})"
            )
    if metadata.truncate_before is not None:
        check_non_negative("truncate_before", metadata.truncate_before)
    if not isinstance(metadata.custom, dict):
        raise InvalidInput(f"custom must be a JSON object (got {type(metadata.custom).__name__})")
    return metadata


def expectation_failure(
    stream_id: str, expected: ExpectedVersion, version: int | None, *, deleted: bool
) -> Conflict | None:
    """The conflict an append with `expected` meets on a stream at `version`, or None if it may go.

    A stream "exists" when it has events and is not soft-deleted. `version` is the last event's
    version (None if it never had one), also for a soft-deleted stream.
    """
    exists = version is not None and not deleted
    if expected == StreamState.ANY:
        return None
    if expected == StreamState.NO_STREAM:
        ok = not exists
    elif expected == StreamState.STREAM_EXISTS:
        ok = exists
    else:
        ok = exists and version == expected
    if ok:
        return None
    return version_conflict(stream_id, expected, version, deleted=deleted and version is not None)


def visible_from(version: int | None, metadata: StreamMetadata, deleted_before: int) -> int:
    """The lowest version a read may show: after soft deletes, `truncate_before` and `max_count`.

    (`max_age` is applied per event, by its creation time.)
    """
    floor = max(deleted_before, metadata.truncate_before or 0)
    if metadata.max_count is not None and version is not None:
        floor = max(floor, version - metadata.max_count + 1)
    return floor
