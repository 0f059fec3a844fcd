"""What the event store keeps: events, streams and their metadata, snapshots.

Versions are 0-based: a stream's first event is version 0, and a stream's `version` is the version
of its last event. Global positions start at 1 and have no gaps.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

JSON: TypeAlias = Any
"""Any value `orjson` can write: dict, list, str, int, float, bool, None."""

Direction: TypeAlias = Literal["forward", "backward"]


class StreamState(StrEnum):
    """The expected versions that are not a number. Each equals its wire string."""

    ANY = "any"
    NO_STREAM = "no_stream"
    STREAM_EXISTS = "stream_exists"


ExpectedVersion: TypeAlias = StreamState | int
"""`StreamState.ANY`, `NO_STREAM`, `STREAM_EXISTS`, or the exact version of the stream's last event.

`NO_STREAM` holds for a stream that never had events or was soft-deleted; an exact version only
for a live (not deleted) stream whose last event has that version.
"""

ANY = StreamState.ANY
NO_STREAM = StreamState.NO_STREAM
STREAM_EXISTS = StreamState.STREAM_EXISTS


@dataclass(frozen=True, slots=True)
class EventData:
    """An event to append. `id` makes retries idempotent: keep it when resending the same event.

    `metadata` is stored as given. Two keys mean something to the service: `subject` (a string
    naming whose personal data the event holds) and `sensitive` (a list of field paths of `data`
    encrypted with that subject's key), used for crypto-shredding by the API layer.
    """

    type: str
    data: JSON
    metadata: dict[str, JSON] = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    schema_version: int = 1


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored.

    `global_position` is None in a stream read while the sequencer has not yet moved the event
    into the global log (PostgreSQL only, usually for milliseconds); log reads always carry it.
    `created` is when the appending transaction began (PostgreSQL) or committed (SQLite), in UTC.
    """

    stream_id: str
    version: int
    global_position: int | None
    id: uuid.UUID
    type: str
    data: JSON
    metadata: dict[str, JSON]
    schema_version: int
    created: datetime
    trace: Mapping[str, str] | None = None
    """The W3C trace context (`traceparent`, `tracestate`) of the append, when it had one."""


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an append landed. `replayed` is True when it was an idempotent retry of an earlier
    append: nothing new was written and the versions are those of the first time."""

    stream_id: str
    first_version: int
    last_version: int
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """Retention and free-form metadata of a stream; reads hide what retention excludes.

    - `max_age`: seconds; events created longer ago are hidden.
    - `max_count`: only the last `max_count` events are shown.
    - `truncate_before`: events with a lower version are hidden.
    - `custom`: any JSON object, stored and returned as given.
    """

    max_age: int | None = None
    max_count: int | None = None
    truncate_before: int | None = None
    custom: dict[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A stream's state.

    `version` is the version of its last event (None if it never had one); after a soft delete it
    keeps its value, because appending again continues the numbering. `deleted` is True after a
    soft delete until the next append; `tombstoned` is True for good after a hard delete.
    """

    stream_id: str
    version: int | None
    created: datetime
    updated: datetime
    metadata: StreamMetadata
    deleted: bool = False
    tombstoned: bool = False

    @property
    def category(self) -> str:
        return self.stream_id.split("-", 1)[0]


@dataclass(frozen=True, slots=True)
class StreamPage:
    """One page of a stream read. `next_version` is the `from_version` of the next page in the
    same direction, or None when this page reached the end."""

    stream_id: str
    events: list[RecordedEvent]
    next_version: int | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A state folded from a stream's events up to and including `version`."""

    stream_id: str
    version: int
    state: JSON
    created: datetime
