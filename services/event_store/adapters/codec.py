"""JSON for the adapters: orjson, with the same refusals on both backends.

PostgreSQL's `jsonb` cannot hold the NUL character, so both adapters refuse it up front and a
value that one backend stores the other stores too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import orjson

from outrigger.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from services.event_store.domain import JSON, EventData, StreamMetadata

_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def dumps(value: JSON, what: str) -> bytes:
    """`value` as JSON bytes, or `InvalidInput` saying why it cannot be stored."""
    try:
        raw = orjson.dumps(value)
    except TypeError as exc:
        raise InvalidInput(f"{what} must be JSON: {exc}") from None
    if b"\\u0000" in raw and _NUL.search(raw):
        raise InvalidInput(f"{what} contains the NUL character (\\u0000), which cannot be stored")
    return raw


def events_json(events: Sequence[EventData], trace: Mapping[str, str] | None = None) -> str:
    """The batch as the JSON array the PostgreSQL `append` function reads."""
    batch = [
        {
            "id": event.id,
            "type": event.type,
            "schema_version": event.schema_version,
            "data": event.data,
            "metadata": event.metadata,
            "trace": trace,
        }
        for event in events
    ]
    return dumps(batch, "event data and metadata").decode()


def metadata_params(stream_id: str, metadata: StreamMetadata) -> dict[str, object]:
    """The bind parameters of both adapters' `SET_METADATA` statements."""
    return {
        "stream": stream_id,
        "max_age": metadata.max_age,
        "max_count": metadata.max_count,
        "truncate_before": metadata.truncate_before,
        "custom": dumps(metadata.custom, "custom").decode(),
    }


loads = orjson.loads
