"""Driver errors of the PostgreSQL adapter, as the kit's and the domain's errors.

The `append` function raises custom SQLSTATEs with a JSON DETAIL (see the migration): `ES409`
wrong expected version, `ES410` tombstoned stream, `ES411` event id stored by another append.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

import orjson
import psycopg

from outrigger import db
from outrigger.db.postgres import reason
from outrigger.errors import InvalidInput
from services.event_store.domain import event_id_conflict, tombstoned, version_conflict

if TYPE_CHECKING:
    from collections.abc import Iterator

    from services.event_store.domain import ExpectedVersion

__all__ = ["append_error", "reason", "stored_event_id", "translated"]


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """The kit's mapping (`outrigger.db.translated`), and text PostgreSQL cannot store as a 422."""
    try:
        with db.translated():
            yield
    except psycopg.errors.CharacterNotInRepertoire as exc:
        raise InvalidInput(f"text that cannot be stored: {reason(exc)}") from None
    except psycopg.errors.UntranslatableCharacter as exc:
        raise InvalidInput(f"text that cannot be stored: {reason(exc)}") from None


def append_error(exc: psycopg.Error, stream_id: str, expected: ExpectedVersion) -> Exception:
    """The domain error an `append` failure means; the driver's error if it is none of them."""
    state = exc.sqlstate
    if state == "ES409":
        detail = orjson.loads(exc.diag.message_detail or "{}")
        return version_conflict(stream_id, expected, detail["version"], deleted=detail["deleted"])
    if state == "ES410":
        return tombstoned(stream_id)
    if state == "ES411":
        detail = orjson.loads(exc.diag.message_detail or "{}")
        return event_id_conflict(
            uuid.UUID(detail["event_id"]), detail["stream_id"], detail["version"]
        )
    return exc


def stored_event_id(exc: psycopg.Error) -> bool:
    """A unique violation on `events.event_id`: the batch holds an id that is already stored."""
    return exc.sqlstate == "23505" and exc.diag.constraint_name == "events_event_id"
