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
from psycopg_pool import PoolTimeout

from outrigger.errors import ConnectionPoolError, DatabaseError, InvalidInput
from services.event_store.domain import event_id_conflict, tombstoned, version_conflict

if TYPE_CHECKING:
    from collections.abc import Iterator

    from services.event_store.domain import ExpectedVersion


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Pool and connection failures as `ConnectionPoolError` / `DatabaseError`, with the reason."""
    try:
        yield
    except PoolTimeout as exc:
        raise ConnectionPoolError(f"no database connection free in time: {exc}") from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise DatabaseError(f"database unavailable: {reason(exc)}") from exc
    except psycopg.errors.CharacterNotInRepertoire as exc:
        raise InvalidInput(f"text that cannot be stored: {reason(exc)}") from None
    except psycopg.errors.UntranslatableCharacter as exc:
        raise InvalidInput(f"text that cannot be stored: {reason(exc)}") from None


def reason(exc: psycopg.Error) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


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
