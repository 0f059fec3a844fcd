"""The domain errors of the event store, each saying what was wrong and what to do.

Every adapter raises these (never its driver's errors) so the API maps them the same way:
`Conflict` (409), `Gone` (410), `NotFound` (404), `InvalidInput` (422).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from outrigger.errors import Conflict, Gone, NotFound

if TYPE_CHECKING:
    import uuid

    from services.event_store.domain.models import ExpectedVersion


def wire(expected: ExpectedVersion) -> int | str:
    """The expected version as the API writes it: an int, or "any" / "no_stream" / ..."""
    return expected if isinstance(expected, int) else str(expected)


def version_conflict(
    stream_id: str, expected: ExpectedVersion, actual: int | None, *, deleted: bool = False
) -> Conflict:
    """The stream is not where the caller expected it.

    `actual` is the version of the stream's last event, None when the stream has no events or was
    soft-deleted (`deleted`, with `actual` then meaning the last version before the delete).
    """
    shown = wire(expected)
    said = f'"{shown}"' if isinstance(shown, str) else str(shown)
    if deleted:
        where = (
            f"was deleted (its last version was {actual}); append with expected_version "
            '"no_stream" or "any" to restart it'
        )
        actual = None
    elif actual is None:
        where = 'does not exist; append with expected_version "no_stream" or "any" to create it'
    else:
        where = f"is at {actual}; read its new events, then retry with expected_version {actual}"
    return Conflict(
        f'expected_version {said} but stream "{stream_id}" {where}',
        stream_id=stream_id,
        expected_version=shown,
        actual_version=actual,
    )


def event_id_conflict(event_id: uuid.UUID, stream_id: str, version: int) -> Conflict:
    """An event id of the batch is already stored, but the batch is not a retry of that append."""
    return Conflict(
        f'event id {event_id} was already appended to stream "{stream_id}" at version {version} '
        "by an append with other content; resend exactly the same events to retry, or give new "
        "events new ids",
        stream_id=stream_id,
        event_id=str(event_id),
        version=version,
    )


def tombstoned(stream_id: str) -> Gone:
    return Gone(
        f'stream "{stream_id}" was deleted for good (tombstoned): it can no longer be written '
        "or read; use another stream id",
        stream_id=stream_id,
    )


def stream_not_found(stream_id: str) -> NotFound:
    return NotFound(
        f'stream "{stream_id}" does not exist; append to it to create it',
        stream_id=stream_id,
    )


def snapshot_version_unknown(stream_id: str, version: int, last: int | None) -> Conflict:
    """A snapshot's version is not one the stream has now: past its last event (`last`), or from
    before it was deleted (`version <= last` then)."""
    if last is not None and version <= last:
        where = "is from before the stream was deleted; snapshot a version appended since"
    else:
        where = f"is past the stream's last event ({last}); snapshot a version the stream has"
    return Conflict(
        f'snapshot version {version} of stream "{stream_id}" {where}',
        stream_id=stream_id,
        version=version,
        actual_version=last,
    )
