"""The PostgreSQL event store (ARCHITECTURE §5 and design/event-store-ordering.md).

An append is one call of the `event_store.append` stored function on an autocommit connection:
one round trip, one READ COMMITTED transaction that takes the stream's advisory lock, checks the
expected version (and, only if it fails, whether the batch is a retry) and inserts the events
stamped with their xid. An event id already stored fails the insert on its unique index; then
`event_store.replayed` says whether the batch is a retry (first result) or a conflict. The
global log is filled by the elected sequencer (`usecases.sequencer`), through `SequencedLog`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from services.event_store.adapters import postgres_sql as sql
from services.event_store.adapters.codec import dumps, events_json, metadata_params
from services.event_store.adapters.head_watch import HeadWatch
from services.event_store.adapters.postgres_connection import connect, open_pool, pool_sizes
from services.event_store.adapters.postgres_errors import (
    append_error,
    stored_event_id,
    translated,
)
from services.event_store.adapters.postgres_listener import LogListener
from services.event_store.domain import (
    ANY,
    AppendResult,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamMetadata,
    StreamPage,
    StreamState,
    expectation_failure,
    snapshot_version_unknown,
    stream_not_found,
    tombstoned,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from outrigger.db import Pool
    from outrigger.settings import Settings
    from services.event_store.domain import (
        JSON,
        Direction,
        EventData,
        ExpectedVersion,
    )

_CODES = {StreamState.ANY: None, StreamState.NO_STREAM: -1, StreamState.STREAM_EXISTS: -2}


class PostgresEventStore:
    """Implements `EventStore` and `SequencedLog` on PostgreSQL. Build it with `open()`, release
    it with `close()`."""

    def __init__(self, pool: Pool, url: str) -> None:
        self._pool = pool
        self._watch = HeadWatch()
        self._listener = LogListener(
            lambda: connect(url, "outrigger-event-store-listener"), self._watch
        )

    @classmethod
    async def open(
        cls, url: str, *, min_size: int = 1, max_size: int = 20, wait_seconds: float = 5.0
    ) -> PostgresEventStore:
        """Connects to `url` (`postgresql+psycopg://…` or `postgresql://…`) with a pool of
        `min_size`-`max_size` connections; a call waits `wait_seconds` at most for a free one
        (then `ConnectionPoolError`). An unreachable server raises `DatabaseError` here."""
        pool = await open_pool(url, min_size=min_size, max_size=max_size, wait_seconds=wait_seconds)
        return cls(pool, url)

    @classmethod
    async def from_settings(cls, settings: Settings) -> PostgresEventStore:
        return await cls.open(settings.database_url, **pool_sizes(settings))

    async def close(self) -> None:
        await self._listener.stop()
        await self._pool.close()

    async def append(
        self,
        stream_id: str,
        events: Sequence[EventData],
        expected_version: ExpectedVersion = ANY,
        *,
        trace: Mapping[str, str] | None = None,
    ) -> AppendResult:
        expected = expected_version
        code = _CODES[expected] if isinstance(expected, StreamState) else expected
        params = (stream_id, code, events_json(events, trace))
        try:
            with translated():
                async with self._pool.connection() as connection:
                    first, last, replayed = await self._call_append(connection, params)
        except psycopg.Error as exc:
            if stored_event_id(exc):
                return await self._replay(stream_id, params[2], expected)
            raise append_error(exc, stream_id, expected) from None
        return AppendResult(stream_id, first, last, replayed)

    async def _call_append(
        self, connection: psycopg.AsyncConnection[Any], params: tuple[str, int | None, str]
    ) -> tuple[int, int, bool]:
        """One call of the stored function, its own transaction (tests hold it open longer)."""
        cursor = await connection.execute(sql.APPEND, params)
        row: tuple[int, int, bool] = await cursor.fetchone()  # type: ignore[assignment]
        return row

    async def _replay(
        self, stream_id: str, payload: str, expected: ExpectedVersion
    ) -> AppendResult:
        """An event id of the batch is stored: the first result if this is a retry of that
        append, else the `Conflict` naming the id (a second round trip, for retries only)."""
        try:
            first, last = await self._fetchone(sql.REPLAYED, (stream_id, payload))
        except psycopg.Error as exc:
            raise append_error(exc, stream_id, expected) from None
        return AppendResult(stream_id, first, last, replayed=True)

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        direction: Direction = "forward",
        limit: int = 100,
    ) -> StreamPage:
        query = sql.READ_FORWARD if direction == "forward" else sql.READ_BACKWARD
        start = from_version if from_version is not None or direction == "backward" else 0
        params = {"stream": stream_id, "from": start, "limit": limit + 1}
        rows = await self._fetchall(query, params)
        if not rows:
            raise stream_not_found(stream_id)
        if rows[0][0]:
            raise tombstoned(stream_id)
        events = [_event(stream_id, row[1:9], row[9]) for row in rows if row[1] is not None]
        following = events[limit].version if len(events) > limit else None
        return StreamPage(stream_id, events[:limit], following)

    async def stream_info(self, stream_id: str) -> StreamInfo:
        row = await self._fetchone(sql.STREAM_INFO, (stream_id,))
        if row is None:
            raise stream_not_found(stream_id)
        return _info(stream_id, row)

    async def set_metadata(self, stream_id: str, metadata: StreamMetadata) -> StreamInfo:
        params = metadata_params(stream_id, metadata)
        row = await self._fetchone(sql.SET_METADATA, params)
        if row is None:
            raise tombstoned(stream_id)
        return _info(stream_id, row)

    async def delete(
        self, stream_id: str, *, hard: bool = False, expected_version: ExpectedVersion = ANY
    ) -> None:
        expected = expected_version
        with translated():
            async with self._pool.connection() as connection, connection.transaction():
                await connection.execute(sql.LOCK_STREAM, (stream_id,))
                cursor = await connection.execute(sql.STREAM_INFO, (stream_id,))
                row = await cursor.fetchone()
                if row is not None and row[8]:
                    raise tombstoned(stream_id)
                if row is None:
                    raise stream_not_found(stream_id)
                version = row[0] if row is not None and row[0] >= 0 else None
                deleted = bool(row and row[7])
                conflict = expectation_failure(stream_id, expected, version, deleted=deleted)
                if conflict is not None:
                    raise conflict
                await connection.execute(sql.HARD_DELETE if hard else sql.SOFT_DELETE, (stream_id,))
                await connection.execute(sql.DROP_SNAPSHOT, (stream_id,))

    async def read_log(
        self,
        after_position: int = 0,
        limit: int = 1000,
        *,
        category: str | None = None,
        event_type: str | None = None,
    ) -> list[RecordedEvent]:
        query = sql.READ_LOG[category is not None, event_type is not None]
        params = {"after": after_position, "limit": limit, "category": category, "type": event_type}
        rows = await self._fetchall(query, params)
        return [_event(row[1], row[2:10], row[0]) for row in rows]

    async def head_position(self) -> int:
        row = await self._fetchone(sql.HEAD)
        return int(row[0]) if row else 0

    async def wait_for_log(self, after_position: int, *, max_wait: float) -> int:
        self._listener.start()
        if self._watch.head <= after_position and not self._listener.connected:
            self._watch.advance(await self.head_position())
        return await self._watch.wait(after_position, max_wait)

    async def save_snapshot(self, stream_id: str, version: int, state: JSON) -> Snapshot:
        params = {"stream": stream_id, "version": version, "state": dumps(state, "state").decode()}
        row = await self._fetchone(sql.SAVE_SNAPSHOT, params)
        if row is not None:
            return Snapshot(stream_id, version, state, row[0])
        info = await self.stream_info(stream_id)
        if info.tombstoned:
            raise tombstoned(stream_id)
        if info.deleted:
            raise stream_not_found(stream_id)
        raise snapshot_version_unknown(stream_id, version, info.version)

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        row = await self._fetchone(sql.LOAD_SNAPSHOT, (stream_id,))
        return Snapshot(stream_id, row[0], row[1], row[2]) if row else None

    async def sequence_batch(self, limit: int = 10_000) -> int:
        row = await self._fetchone(sql.SEQUENCE_BATCH, (limit,))
        return int(row[0]) if row else 0

    async def get_checkpoint(self, name: str) -> int:
        row = await self._fetchone(sql.GET_CHECKPOINT, (name,))
        return int(row[0]) if row else 0

    async def set_checkpoint(self, name: str, position: int) -> None:
        await self._fetchone(sql.SET_CHECKPOINT, (name, position))

    async def sequencer_delay(self) -> float | None:
        return _age(await self._fetchone(sql.SEQUENCER_DELAY))

    async def oldest_transaction_age(self) -> float | None:
        return _age(await self._fetchone(sql.OLDEST_TRANSACTION))

    async def _fetchone(self, query: str, params: Any = None) -> Any:
        with translated():
            async with self._pool.connection() as connection:
                cursor = await connection.execute(query, params)
                return await cursor.fetchone() if cursor.description else None

    async def _fetchall(self, query: str, params: Any = None) -> list[Any]:
        with translated():
            async with self._pool.connection() as connection:
                cursor = await connection.execute(query, params)
                return await cursor.fetchall()


def _age(row: Sequence[Any] | None) -> float | None:
    """Seconds from a one-column row; None when the query found nothing to measure."""
    return None if row is None or row[0] is None else max(0.0, float(row[0]))


def _event(stream_id: str, row: Sequence[Any], position: int | None) -> RecordedEvent:
    version, event_id, event_type, data, metadata, schema_version, created, trace = row
    return RecordedEvent(
        stream_id,
        version,
        position,
        event_id,
        event_type,
        data,
        metadata,
        schema_version,
        created,
        trace,
    )


def _info(stream_id: str, row: Sequence[Any]) -> StreamInfo:
    version, created, updated, max_age, max_count, truncate_before, custom, deleted, tomb = row
    metadata = StreamMetadata(max_age, max_count, truncate_before, custom)
    return StreamInfo(
        stream_id, version if version >= 0 else None, created, updated, metadata, deleted, tomb
    )
