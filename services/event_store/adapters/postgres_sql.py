"""The SQL of the PostgreSQL adapter. `append` and `sequence_batch` are stored functions created
by the migration (`migrations/versions/event_store/`); the rest is plain statements."""

from __future__ import annotations

APPEND = "SELECT * FROM event_store.append(%s, %s, %s::jsonb)"
REPLAYED = "SELECT * FROM event_store.replayed(%s, %s::jsonb)"

SEQUENCE_BATCH = "SELECT event_store.sequence_batch(%s)"

HEAD = "SELECT last_position FROM event_store.sequencer_state WHERE id = 1"

_EVENT = (
    "e.version, e.event_id, e.type, e.data, e.metadata, e.schema_version, e.created_at, e.trace"
)

# One round trip: the stream's row says what is visible, the lateral join reads those events.
_READ_STREAM = f"""
WITH s AS (
  SELECT version, deleted, tombstoned, max_age,
         greatest(deleted_before, coalesce(truncate_before, 0),
                  CASE WHEN max_count IS NULL THEN 0 ELSE version - max_count + 1 END) AS floor
    FROM event_store.streams WHERE stream_id = %(stream)s)
SELECT s.tombstoned, {_EVENT}, g.position
  FROM s
  LEFT JOIN LATERAL (
    SELECT * FROM event_store.events e
     WHERE e.stream_id = %(stream)s AND NOT s.deleted AND NOT s.tombstoned
       AND e.version {{bound}}
       AND (s.max_age IS NULL OR e.created_at >= now() - make_interval(secs => s.max_age))
     ORDER BY e.version {{order}} LIMIT %(limit)s) e ON true
  LEFT JOIN event_store.global_log g ON g.stream_id = %(stream)s AND g.version = e.version
 ORDER BY e.version {{order}}
"""
READ_FORWARD = _READ_STREAM.format(bound=">= greatest(s.floor, %(from)s)", order="")
READ_BACKWARD = _READ_STREAM.format(
    bound="BETWEEN s.floor AND coalesce(%(from)s, s.version)", order="DESC"
)

_READ_LOG = f"""
SELECT g.position, g.stream_id, {_EVENT}
  FROM event_store.global_log g
  JOIN event_store.events e ON e.stream_id = g.stream_id AND e.version = g.version
 WHERE g.position > %(after)s {{filters}}
 ORDER BY g.position LIMIT %(limit)s
"""
READ_LOG = {
    (False, False): _READ_LOG.format(filters=""),
    (True, False): _READ_LOG.format(filters="AND g.category = %(category)s"),
    (False, True): _READ_LOG.format(filters="AND g.type = %(type)s"),
    (True, True): _READ_LOG.format(filters="AND g.category = %(category)s AND g.type = %(type)s"),
}

_INFO = (
    "version, created_at, updated_at, max_age, max_count, truncate_before, custom, deleted, "
    "tombstoned"
)
STREAM_INFO = f"SELECT {_INFO} FROM event_store.streams WHERE stream_id = %s"

# Only a tombstone stops a metadata change; the row is created for a stream without events.
SET_METADATA = f"""
INSERT INTO event_store.streams AS s (stream_id, max_age, max_count, truncate_before, custom)
VALUES (%(stream)s, %(max_age)s, %(max_count)s, %(truncate_before)s, %(custom)s::jsonb)
ON CONFLICT (stream_id) DO UPDATE
   SET max_age = EXCLUDED.max_age, max_count = EXCLUDED.max_count,
       truncate_before = EXCLUDED.truncate_before, custom = EXCLUDED.custom, updated_at = now()
 WHERE NOT s.tombstoned
RETURNING {_INFO}
"""

LOCK_STREAM = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
SOFT_DELETE = """
UPDATE event_store.streams SET deleted = true, deleted_before = version + 1, updated_at = now()
 WHERE stream_id = %s
"""
HARD_DELETE = """
INSERT INTO event_store.streams AS s (stream_id, deleted, tombstoned) VALUES (%s, true, true)
ON CONFLICT (stream_id) DO UPDATE
   SET deleted = true, tombstoned = true, deleted_before = s.version + 1, updated_at = now()
"""
DROP_SNAPSHOT = "DELETE FROM event_store.snapshots WHERE stream_id = %s"

SAVE_SNAPSHOT = """
INSERT INTO event_store.snapshots (stream_id, version, state)
SELECT stream_id, %(version)s, %(state)s::jsonb FROM event_store.streams
 WHERE stream_id = %(stream)s AND NOT deleted AND %(version)s BETWEEN deleted_before AND version
ON CONFLICT (stream_id) DO UPDATE
   SET version = EXCLUDED.version, state = EXCLUDED.state, created_at = now()
RETURNING created_at
"""
# A snapshot saved while a delete ran is still hidden: it must not predate the delete.
LOAD_SNAPSHOT = """
SELECT n.version, n.state, n.created_at
  FROM event_store.snapshots n JOIN event_store.streams s USING (stream_id)
 WHERE n.stream_id = %s AND NOT s.deleted AND n.version >= s.deleted_before
"""

GET_CHECKPOINT = "SELECT position FROM event_store.checkpoints WHERE name = %s"
SET_CHECKPOINT = """
INSERT INTO event_store.checkpoints (name, position) VALUES (%s, %s)
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()
"""

# Bounded: looks at the first 1,000 unsequenced events in sequencing order.
# LATERAL, so the cursor is a parameter of the index scan: joined as a filter, the comparison
# walked the whole events index (0.9 s at 1.1 million events, every refresh).
SEQUENCER_DELAY = """
SELECT extract(epoch FROM now() - min(pending.created_at))::float8
  FROM event_store.sequencer_state s
 CROSS JOIN LATERAL (
  SELECT e.created_at FROM event_store.events e
   WHERE (e.xid, e.ins_id) > (s.last_xid, s.last_ins_id)
   ORDER BY e.xid, e.ins_id LIMIT 1000) pending
 WHERE s.id = 1
"""
# Only transactions holding an xid hold the sequencer's horizon back.
OLDEST_TRANSACTION = """
SELECT extract(epoch FROM now() - min(xact_start))::float8
  FROM pg_stat_activity WHERE backend_xid IS NOT NULL
"""
