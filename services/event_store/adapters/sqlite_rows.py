"""Rows of the SQLite adapter as domain objects, and its idempotency check."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from outrigger.db.sqlite import now_us, timestamp
from services.event_store.adapters.codec import loads
from services.event_store.domain import (
    RecordedEvent,
    StreamInfo,
    StreamMetadata,
    event_id_conflict,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Row

__all__ = ["event", "info", "now_us", "replay", "timestamp"]


def event(stream_id: str, row: Sequence[Any]) -> RecordedEvent:
    """From (position, version, event_id, type, data, metadata, schema_version, created_at,
    trace)."""
    position, version, event_id, event_type, data, metadata, schema_version, created, trace = row
    return RecordedEvent(
        stream_id,
        version,
        position,
        uuid.UUID(event_id),
        event_type,
        loads(data),
        loads(metadata),
        schema_version,
        timestamp(created),
        loads(trace) if trace is not None else None,
    )


def info(stream_id: str, row: Row[Any]) -> StreamInfo:
    metadata = StreamMetadata(row.max_age, row.max_count, row.truncate_before, loads(row.custom))
    return StreamInfo(
        stream_id,
        row.version if row.version >= 0 else None,
        timestamp(row.created_at),
        timestamp(row.updated_at),
        metadata,
        bool(row.deleted),
        bool(row.tombstoned),
    )


def replay(
    stream_id: str, batch: Sequence[dict[str, Any]], stored: Sequence[Row[Any]]
) -> tuple[int, int]:
    """The versions of the first append if `batch` retries it; otherwise raises `Conflict`.

    A retry: every id stored, in this stream, as consecutive versions in batch order, with the
    same type, schema version, data and metadata (compared as JSON values, not as text). The
    conflict names the first id whose content differs, else the first stored one.
    """
    found = {row.event_id: row for row in stored}
    first_row = found.get(batch[0]["id"])
    first = first_row.version if first_row is not None else None
    reported: tuple[Row[Any], bool] | None = None
    retry = True
    for index, event in enumerate(batch):
        row = found.get(event["id"])
        if row is None:
            retry = False
            continue
        same = (
            row.type == event["type"]
            and row.schema_version == event["schema_version"]
            and loads(row.data) == loads(event["data"])
            and loads(row.metadata) == loads(event["metadata"])
        )
        if reported is None or (not same and reported[1]):
            reported = (row, same)
        if not same or row.stream_id != stream_id or first is None or row.version != first + index:
            retry = False
    if retry and first is not None:
        return first, first + len(batch) - 1
    if reported is None:
        raise ValueError("replay() needs at least one stored event of the batch")
    row = reported[0]
    raise event_id_conflict(uuid.UUID(row.event_id), row.stream_id, row.version)
