"""The SQL of the SQLite adapter (schema `event_store` is an attached file; see the kit's `db`).

Times are microseconds since the Unix epoch (UTC); JSON is text written by orjson.
"""

from __future__ import annotations

from sqlalchemy import bindparam, text

_EVENT = "position, version, event_id, type, data, metadata, schema_version, created_at, trace"

STORED_EVENTS = text(
    "SELECT event_id, stream_id, version, type, schema_version, data, metadata "
    "FROM event_store.events WHERE event_id IN :ids"
).bindparams(bindparam("ids", expanding=True))

STREAM = text(
    "SELECT version, deleted, tombstoned, deleted_before, max_age, max_count, truncate_before, "
    "custom, created_at, updated_at FROM event_store.streams WHERE stream_id = :stream"
)

HEAD = text("SELECT coalesce(max(position), 0) FROM event_store.events")

INSERT_EVENT = text(
    "INSERT INTO event_store.events (position, stream_id, version, event_id, type, category, "
    "schema_version, data, metadata, created_at, trace) VALUES (:position, :stream, :version, "
    ":id, :type, :category, :schema_version, :data, :metadata, :created, :trace)"
)

BUMP_STREAM = text(
    "INSERT INTO event_store.streams (stream_id, version, created_at, updated_at) "
    "VALUES (:stream, :version, :now, :now) ON CONFLICT (stream_id) DO UPDATE "
    "SET version = excluded.version, deleted = 0, updated_at = excluded.updated_at"
)

READ_FORWARD = text(
    f"SELECT {_EVENT} FROM event_store.events WHERE stream_id = :stream AND version >= :low "
    "AND created_at >= :since ORDER BY version LIMIT :limit"
)
READ_BACKWARD = text(
    f"SELECT {_EVENT} FROM event_store.events WHERE stream_id = :stream "
    "AND version BETWEEN :low AND :high AND created_at >= :since ORDER BY version DESC "
    "LIMIT :limit"
)

_READ_LOG = (
    f"SELECT stream_id, {_EVENT} FROM event_store.events WHERE position > :after {{filters}} "
    "ORDER BY position LIMIT :limit"
)
READ_LOG = {
    (False, False): text(_READ_LOG.format(filters="")),
    (True, False): text(_READ_LOG.format(filters="AND category = :category")),
    (False, True): text(_READ_LOG.format(filters="AND type = :type")),
    (True, True): text(_READ_LOG.format(filters="AND category = :category AND type = :type")),
}

SET_METADATA = text(
    "INSERT INTO event_store.streams (stream_id, max_age, max_count, truncate_before, custom, "
    "created_at, updated_at) VALUES (:stream, :max_age, :max_count, :truncate_before, :custom, "
    ":now, :now) ON CONFLICT (stream_id) DO UPDATE SET max_age = excluded.max_age, "
    "max_count = excluded.max_count, truncate_before = excluded.truncate_before, "
    "custom = excluded.custom, updated_at = excluded.updated_at WHERE NOT tombstoned"
)

SOFT_DELETE = text(
    "UPDATE event_store.streams SET deleted = 1, deleted_before = version + 1, updated_at = :now "
    "WHERE stream_id = :stream"
)
HARD_DELETE = text(
    "INSERT INTO event_store.streams (stream_id, deleted, tombstoned, created_at, updated_at) "
    "VALUES (:stream, 1, 1, :now, :now) ON CONFLICT (stream_id) DO UPDATE SET deleted = 1, "
    "tombstoned = 1, deleted_before = version + 1, updated_at = excluded.updated_at"
)
DROP_SNAPSHOT = text("DELETE FROM event_store.snapshots WHERE stream_id = :stream")

SAVE_SNAPSHOT = text(
    "INSERT INTO event_store.snapshots (stream_id, version, state, created_at) "
    "VALUES (:stream, :version, :state, :now) ON CONFLICT (stream_id) DO UPDATE "
    "SET version = excluded.version, state = excluded.state, created_at = excluded.created_at"
)
LOAD_SNAPSHOT = text(
    "SELECT n.version, n.state, n.created_at FROM event_store.snapshots n "
    "JOIN event_store.streams s ON s.stream_id = n.stream_id "
    "WHERE n.stream_id = :stream AND NOT s.deleted AND n.version >= s.deleted_before"
)

GET_CHECKPOINT = text("SELECT position FROM event_store.checkpoints WHERE name = :name")
SET_CHECKPOINT = text(
    "INSERT INTO event_store.checkpoints (name, position, updated_at) "
    "VALUES (:name, :position, :now) ON CONFLICT (name) DO UPDATE "
    "SET position = excluded.position, updated_at = excluded.updated_at"
)
