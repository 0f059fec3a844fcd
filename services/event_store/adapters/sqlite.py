"""The embedded event store on SQLite (kit `Database`, aiosqlite), same contract as PostgreSQL.

SQLite has one writer at a time, so commit order is the order writes take the lock. Each append
runs in a `BEGIN IMMEDIATE` transaction (the write lock, across processes too; see
`outrigger.db.sqlite`) and gives its events the next global positions there: the log is
contiguous from the start and needs no sequencer. Readers use WAL snapshots, so a read never sees
half an append.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from outrigger.db import Database, SqliteTransactions
from outrigger.settings import Settings
from outrigger.tasks import Periodic
from services.event_store.adapters import sqlite_sql as sql
from services.event_store.adapters.codec import dumps, loads, metadata_params
from services.event_store.adapters.head_watch import HeadWatch
from services.event_store.adapters.sqlite_rows import event, info, now_us, replay, timestamp
from services.event_store.domain import (
    ANY,
    AppendResult,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamMetadata,
    StreamPage,
    category,
    expectation_failure,
    snapshot_version_unknown,
    stream_not_found,
    tombstoned,
    visible_from,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from services.event_store.domain import JSON, Direction, EventData, ExpectedVersion

SCHEMA = "event_store"


class SqliteEventStore:
    """Implements `EventStore` on SQLite. `poll_interval` bounds how late `wait_for_log` notices
    appends made by another process on the same file (this process's wake waiters at once)."""

    def __init__(self, database: Database, *, poll_interval: float = 0.5, owned: bool = False):
        self._db = database
        self._owned = owned
        self._tx = SqliteTransactions(database)
        self._watch = HeadWatch()
        self._poller = Periodic(self._poll, poll_interval, name="event-store-log-poller")

    @classmethod
    def open(cls, url: str, **options: Any) -> SqliteEventStore:
        """A store on the `sqlite+aiosqlite:///…` file (migrated), owning its engine."""
        database = Database.from_settings(Settings(database_url=url), schemas=[SCHEMA])
        return cls(database, owned=True, **options)

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteEventStore:
        return cls(Database.from_settings(settings, schemas=[SCHEMA]), owned=True)

    async def close(self) -> None:
        await self._poller.stop()
        if self._owned:
            await self._db.dispose()

    async def append(
        self,
        stream_id: str,
        events: Sequence[EventData],
        expected_version: ExpectedVersion = ANY,
        *,
        trace: Mapping[str, str] | None = None,
    ) -> AppendResult:
        what = "event data and metadata"
        traced = dumps(trace, "trace").decode() if trace else None
        rows = [
            {
                "id": str(e.id),
                "type": e.type,
                "category": category(stream_id),
                "schema_version": e.schema_version,
                "data": dumps(e.data, what).decode(),
                "metadata": dumps(e.metadata, what).decode(),
                "trace": traced,
            }
            for e in events
        ]
        async with self._tx.writing() as connection:
            ids = [row["id"] for row in rows]
            stored = (await connection.execute(sql.STORED_EVENTS, {"ids": ids})).all()
            if stored:
                first, last = replay(stream_id, rows, stored)
                return AppendResult(stream_id, first, last, replayed=True)
            stream = (await connection.execute(sql.STREAM, {"stream": stream_id})).first()
            if stream is not None and stream.tombstoned:
                raise tombstoned(stream_id)
            version = stream.version if stream is not None and stream.version >= 0 else None
            deleted = bool(stream is not None and stream.deleted)
            conflict = expectation_failure(stream_id, expected_version, version, deleted=deleted)
            if conflict is not None:
                raise conflict
            current = stream.version if stream is not None else -1
            head = (await connection.execute(sql.HEAD)).scalar_one()
            now = now_us()
            for index, row in enumerate(rows, 1):
                row.update(stream=stream_id, version=current + index, position=head + index)
                row["created"] = now
            await connection.execute(sql.INSERT_EVENT, rows)
            last = current + len(rows)
            await connection.execute(
                sql.BUMP_STREAM, {"stream": stream_id, "version": last, "now": now}
            )
        self._watch.advance(head + len(rows))
        return AppendResult(stream_id, current + 1, last)

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        direction: Direction = "forward",
        limit: int = 100,
    ) -> StreamPage:
        async with self._tx.reading() as connection:
            stream = (await connection.execute(sql.STREAM, {"stream": stream_id})).first()
            if stream is None:
                raise stream_not_found(stream_id)
            if stream.tombstoned:
                raise tombstoned(stream_id)
            if stream.deleted:
                return StreamPage(stream_id, [], None)
            version = stream.version if stream.version >= 0 else None
            low = visible_from(version, info(stream_id, stream).metadata, stream.deleted_before)
            since = now_us() - stream.max_age * 1_000_000 if stream.max_age else 0
            params = {"stream": stream_id, "since": since, "limit": limit + 1}
            if direction == "forward":
                params["low"] = max(low, from_version or 0)
                query = sql.READ_FORWARD
            else:
                high = stream.version if from_version is None else from_version
                params.update(low=low, high=high)
                query = sql.READ_BACKWARD
            rows = (await connection.execute(query, params)).all()
        events = [event(stream_id, row) for row in rows]
        following = events[limit].version if len(events) > limit else None
        return StreamPage(stream_id, events[:limit], following)

    async def stream_info(self, stream_id: str) -> StreamInfo:
        async with self._tx.reading() as connection:
            stream = (await connection.execute(sql.STREAM, {"stream": stream_id})).first()
        if stream is None:
            raise stream_not_found(stream_id)
        return info(stream_id, stream)

    async def set_metadata(self, stream_id: str, metadata: StreamMetadata) -> StreamInfo:
        params = {**metadata_params(stream_id, metadata), "now": now_us()}
        async with self._tx.writing() as connection:
            stream = (await connection.execute(sql.STREAM, {"stream": stream_id})).first()
            if stream is not None and stream.tombstoned:
                raise tombstoned(stream_id)
            await connection.execute(sql.SET_METADATA, params)
            stream = (await connection.execute(sql.STREAM, {"stream": stream_id})).one()
        return info(stream_id, stream)

    async def delete(
        self, stream_id: str, *, hard: bool = False, expected_version: ExpectedVersion = ANY
    ) -> None:
        async with self._tx.writing() as connection:
            stream = (await connection.execute(sql.STREAM, {"stream": stream_id})).first()
            if stream is not None and stream.tombstoned:
                raise tombstoned(stream_id)
            if stream is None:
                raise stream_not_found(stream_id)
            version = stream.version if stream is not None and stream.version >= 0 else None
            deleted = bool(stream is not None and stream.deleted)
            conflict = expectation_failure(stream_id, expected_version, version, deleted=deleted)
            if conflict is not None:
                raise conflict
            params = {"stream": stream_id, "now": now_us()}
            await connection.execute(sql.HARD_DELETE if hard else sql.SOFT_DELETE, params)
            await connection.execute(sql.DROP_SNAPSHOT, params)

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
        async with self._tx.reading() as connection:
            rows = (await connection.execute(query, params)).all()
        return [event(row[0], row[1:]) for row in rows]

    async def head_position(self) -> int:
        async with self._tx.reading() as connection:
            head = int((await connection.execute(sql.HEAD)).scalar_one())
        self._watch.advance(head)
        return head

    async def wait_for_log(self, after_position: int, *, max_wait: float) -> int:
        self._poller.start()
        if self._watch.head <= after_position:
            await self.head_position()
        return await self._watch.wait(after_position, max_wait)

    async def _poll(self) -> None:
        await self.head_position()

    async def save_snapshot(self, stream_id: str, version: int, state: JSON) -> Snapshot:
        params = {"stream": stream_id, "version": version, "state": dumps(state, "state").decode()}
        async with self._tx.writing() as connection:
            stream = (await connection.execute(sql.STREAM, {"stream": stream_id})).first()
            if stream is not None and stream.tombstoned:
                raise tombstoned(stream_id)
            if stream is None or stream.deleted:
                raise stream_not_found(stream_id)
            if not stream.deleted_before <= version <= stream.version:
                last = stream.version if stream.version >= 0 else None
                raise snapshot_version_unknown(stream_id, version, last)
            now = now_us()
            await connection.execute(sql.SAVE_SNAPSHOT, {**params, "now": now})
        return Snapshot(stream_id, version, state, timestamp(now))

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        async with self._tx.reading() as connection:
            row = (await connection.execute(sql.LOAD_SNAPSHOT, {"stream": stream_id})).first()
        return Snapshot(stream_id, row[0], loads(row[1]), timestamp(row[2])) if row else None

    async def get_checkpoint(self, name: str) -> int:
        async with self._tx.reading() as connection:
            found = (await connection.execute(sql.GET_CHECKPOINT, {"name": name})).scalar()
        return int(found) if found is not None else 0

    async def set_checkpoint(self, name: str, position: int) -> None:
        params = {"name": name, "position": position, "now": now_us()}
        async with self._tx.writing() as connection:
            await connection.execute(sql.SET_CHECKPOINT, params)
