"""The JSON the API takes and gives. Requests refuse unknown fields, so a typo is a 422."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from outrigger.http import JsonField, JsonObjectField
from services.event_store.domain import (
    EVENT_TYPE_PATTERN,
    MAX_AGE_SECONDS,
    MAX_EVENTS_PER_APPEND,
    MAX_POSITION,
    EventData,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamMetadata,
)

Position = Annotated[int, Field(ge=0, le=MAX_POSITION)]
"""A version or a global position, at most 2**53 - 1 (`domain.rules.MAX_POSITION`)."""
STATES = ("any", "no_stream", "stream_exists")
EXPECTED_VERSION_FORM = (
    'must be "any", "no_stream", "stream_exists" or a version from 0 to 2**53 - 1'
)


def _expected_version(value: Any) -> Any:
    """Says plainly what an expected version may be (a union's own error lists every branch).

    `7.0` is the integer 7, as JSON Schema counts it."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    valid_number = (
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_POSITION
    )
    if not valid_number and value not in STATES:
        raise PydanticCustomError(
            "expected_version", EXPECTED_VERSION_FORM + " (got {got})", {"got": repr(value)}
        )
    return value


ExpectedVersionIn = Annotated[
    Literal["any", "no_stream", "stream_exists"] | Position,
    BeforeValidator(_expected_version),
]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(Request):
    id: uuid.UUID | None = Field(
        None, description="Keep it when retrying: the same ids with the same content are a replay."
    )
    type: str = Field(pattern=EVENT_TYPE_PATTERN)
    data: JsonField
    metadata: JsonObjectField = Field(
        default_factory=dict,
        description="Free. `subject` names whose personal data the event holds; `sensitive` lists "
        "the paths of `data` to encrypt with that subject's key (erased when it is forgotten).",
    )
    schema_version: int = Field(1, ge=1, lt=2**31)

    def to_event(self) -> EventData:
        if self.id is None:
            return EventData(
                self.type, self.data, self.metadata, schema_version=self.schema_version
            )
        return EventData(self.type, self.data, self.metadata, self.id, self.schema_version)


class AppendIn(Request):
    expected_version: ExpectedVersionIn = "any"
    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_APPEND)

    def to_events(self) -> list[EventData]:
        return [event.to_event() for event in self.events]


class AppendOut(BaseModel):
    stream_id: str
    first_version: int
    last_version: int


class EventOut(BaseModel):
    stream_id: str
    version: int
    global_position: int | None = Field(
        description="Position in the global log; null for a moment until the event is sequenced."
    )
    id: uuid.UUID
    type: str
    data: Any
    metadata: dict[str, Any]
    schema_version: int
    created: datetime

    @classmethod
    def of(cls, event: RecordedEvent) -> "EventOut":
        return cls.model_construct(
            stream_id=event.stream_id,
            version=event.version,
            global_position=event.global_position,
            id=event.id,
            type=event.type,
            data=event.data,
            metadata=event.metadata,
            schema_version=event.schema_version,
            created=event.created,
        )


def event_document(event: RecordedEvent) -> dict[str, Any]:
    """An event as `EventOut` writes it, for the SSE frames (no model built per event)."""
    return {
        "stream_id": event.stream_id,
        "version": event.version,
        "global_position": event.global_position,
        "id": event.id,
        "type": event.type,
        "data": event.data,
        "metadata": event.metadata,
        "schema_version": event.schema_version,
        "created": event.created,
    }


class StreamPageOut(BaseModel):
    stream_id: str
    events: list[EventOut]
    next_version: int | None = Field(
        description="`from_version` of the next page; null at the end."
    )
    next: str | None = Field(description="The URL of the next page (also a `Link` header).")


class LogPageOut(BaseModel):
    events: list[EventOut]
    next_after: int = Field(description="`after` for the next page: every earlier match was read.")
    next: str = Field(description="The URL of the next page (also a `Link` header).")


class MetadataIn(Request):
    max_age: int | None = Field(
        None, ge=1, le=MAX_AGE_SECONDS, description="Seconds; older events are hidden."
    )
    max_count: int | None = Field(
        None, ge=1, le=MAX_POSITION, description="Only the last ones are shown."
    )
    truncate_before: Position | None = Field(None, description="Lower versions are hidden.")
    custom: JsonObjectField = Field(default_factory=dict)

    def to_metadata(self) -> StreamMetadata:
        return StreamMetadata(self.max_age, self.max_count, self.truncate_before, self.custom)


class MetadataOut(BaseModel):
    max_age: int | None
    max_count: int | None
    truncate_before: int | None
    custom: dict[str, Any]


class StreamInfoOut(BaseModel):
    stream_id: str
    category: str
    version: int | None = Field(description="Version of the last event; null if it has none.")
    created: datetime
    updated: datetime
    metadata: MetadataOut
    deleted: bool
    tombstoned: bool

    @classmethod
    def of(cls, info: StreamInfo) -> "StreamInfoOut":
        meta = info.metadata
        return cls(
            stream_id=info.stream_id,
            category=info.category,
            version=info.version,
            created=info.created,
            updated=info.updated,
            metadata=MetadataOut(
                max_age=meta.max_age,
                max_count=meta.max_count,
                truncate_before=meta.truncate_before,
                custom=meta.custom,
            ),
            deleted=info.deleted,
            tombstoned=info.tombstoned,
        )


class SnapshotIn(Request):
    version: Position = Field(description="The stream version the state was folded up to.")
    state: JsonField


class SnapshotOut(BaseModel):
    stream_id: str
    version: int
    state: Any
    created: datetime

    @classmethod
    def of(cls, snapshot: Snapshot) -> "SnapshotOut":
        return cls.model_construct(
            stream_id=snapshot.stream_id,
            version=snapshot.version,
            state=snapshot.state,
            created=snapshot.created,
        )


def expected_version_query(value: str) -> int | str:
    """An expected version sent as a query parameter (`any`, ..., or digits)."""
    return int(value) if value.isdecimal() else value
