"""What `EventStoreClient` returns: the event store's answers as frozen dataclasses.

Each matches the JSON schema of the same name in the service's OpenAPI document field for field
(`RecordedEvent` is `EventOut`, `StreamPage` is `StreamPageOut`, ...), with `uuid` strings as
`uuid.UUID` and `date-time` strings as aware `datetime`s. `data`, `metadata` and `state` are the
JSON the events were appended with, as Python values.
"""

from __future__ import annotations

import uuid  # noqa: TC003 (pydantic reads the annotations at runtime)
from dataclasses import dataclass
from datetime import datetime  # noqa: TC003
from typing import Any, Literal

ExpectedVersion = Literal["any", "no_stream", "stream_exists"] | int
"""`"any"`, `"no_stream"`, `"stream_exists"`, or the version of the stream's last event."""
Direction = Literal["forward", "backward"]


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an append landed. `replayed` is True when the store recognised a retry of an
    earlier append (the same event ids and content) and answered with its first result."""

    stream_id: str
    first_version: int
    last_version: int
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored. `global_position` is its position in the global log: always set in
    the log and in subscriptions; None in a stream read for a moment after the append."""

    stream_id: str
    version: int
    global_position: int | None
    id: uuid.UUID
    type: str
    data: Any
    metadata: dict[str, Any]
    schema_version: int
    created: datetime


@dataclass(frozen=True, slots=True)
class StreamPage:
    """A page of a stream; `next_version` is the `from_version` of the next page, None at the
    end, and `next` the same as a URL path."""

    stream_id: str
    events: tuple[RecordedEvent, ...]
    next_version: int | None
    next: str | None


@dataclass(frozen=True, slots=True)
class LogPage:
    """A page of the global log; every earlier match has been read once `after=next_after`."""

    events: tuple[RecordedEvent, ...]
    next_after: int
    next: str


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """Retention (`max_age` in seconds, `max_count`, `truncate_before` a version) and free
    `custom` members; reads hide the events retention leaves out."""

    max_age: int | None
    max_count: int | None
    truncate_before: int | None
    custom: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A stream's version (None before its first event), times, metadata and delete state."""

    stream_id: str
    category: str
    version: int | None
    created: datetime
    updated: datetime
    metadata: StreamMetadata
    deleted: bool
    tombstoned: bool


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A state folded from the stream's events up to `version`."""

    stream_id: str
    version: int
    state: Any
    created: datetime
