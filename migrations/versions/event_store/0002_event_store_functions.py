"""event store functions: append (one round trip) and sequence_batch (PostgreSQL only)

Errors raised by `append` and `replayed`, mapped to domain errors by the adapter (DETAIL is a JSON
object): `ES409` wrong expected version {version, deleted}; `ES410` tombstoned stream; `ES411` an
event id is stored by an append with other content {event_id, stream_id, version}; 23505 on
`events_event_id` means "ask `replayed`".

Revision ID: event_store_0002
Revises: event_store_0001
Create Date: 2026-11-21 17:00:01
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic import op

if TYPE_CHECKING:
    from collections.abc import Sequence

revision: str = "event_store_0002"
down_revision: str | Sequence[str] | None = "event_store_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A retry if every id is stored, in this stream, as consecutive versions in batch order, with the
# same content. Otherwise ES411 names the first id whose content differs, else the first stored.
REPLAYED = r"""
CREATE FUNCTION event_store.replayed(p_stream text, p_events jsonb,
                                     OUT first_version bigint, OUT last_version bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  r record;
  v_retry boolean := true;
  v_id uuid;          -- the event id to report: the first whose content differs,
  v_stream text;      -- else the first stored one
  v_version bigint;
  v_differs boolean := false;
BEGIN
  FOR r IN
    SELECT t.o, (t.e->>'id')::uuid AS id, s.stream_id, s.version,
           s.type = t.e->>'type' AND s.schema_version = (t.e->>'schema_version')::int
             AND s.data = t.e->'data' AND s.metadata = t.e->'metadata' AS same
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t(e, o)
      LEFT JOIN event_store.events s ON s.event_id = (t.e->>'id')::uuid
     ORDER BY t.o
  LOOP
    IF r.o = 1 THEN first_version := r.version; END IF;
    last_version := r.version;
    IF r.stream_id IS NULL THEN
      v_retry := false;
      CONTINUE;
    END IF;
    IF v_id IS NULL OR (NOT r.same AND NOT v_differs) THEN
      v_id := r.id; v_stream := r.stream_id; v_version := r.version;
      v_differs := NOT r.same;
    END IF;
    IF NOT r.same OR r.stream_id <> p_stream OR r.version <> first_version + r.o - 1 THEN
      v_retry := false;
    END IF;
  END LOOP;
  IF NOT v_retry THEN
    RAISE EXCEPTION 'event id % is stored by another append', v_id
      USING ERRCODE = 'ES411',
            DETAIL = json_build_object('event_id', v_id, 'stream_id', v_stream,
                                       'version', v_version)::text;
  END IF;
END $$;
"""

# p_expected: NULL = any, -1 = no stream, -2 = stream exists, >= 0 = exact version.
# The hot path makes no idempotency lookup: a stored event id makes the INSERT fail on the unique
# index (23505 on events_event_id) and the adapter then asks `replayed`. Only when the expectation
# fails is the batch first checked for being a retry, so a retry is answered as the first time.
APPEND = r"""
CREATE FUNCTION event_store.append(p_stream text, p_expected bigint, p_events jsonb,
                                   OUT first_version bigint, OUT last_version bigint,
                                   OUT replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
  v_found boolean;
  v_version bigint;
  v_deleted boolean;
  v_tombstoned boolean;
  v_exists boolean;
BEGIN
  -- The stream's lock comes before any write, so this transaction's xid is assigned after the
  -- stream's previous writer committed: xid order respects each stream's version order.
  PERFORM pg_advisory_xact_lock(hashtextextended(p_stream, 0));
  SELECT s.version, s.deleted, s.tombstoned INTO v_version, v_deleted, v_tombstoned
    FROM event_store.streams s WHERE s.stream_id = p_stream;
  v_found := FOUND;
  v_exists := coalesce(v_version >= 0 AND NOT v_deleted, false);
  IF v_tombstoned OR (p_expected IS NOT NULL AND (
       (p_expected = -1 AND v_exists) OR (p_expected = -2 AND NOT v_exists)
       OR (p_expected >= 0 AND (NOT v_exists OR v_version <> p_expected)))) THEN
    IF EXISTS (SELECT 1 FROM event_store.events
                WHERE event_id IN (SELECT (e->>'id')::uuid FROM jsonb_array_elements(p_events) e))
    THEN
      SELECT r.first_version, r.last_version INTO first_version, last_version
        FROM event_store.replayed(p_stream, p_events) r;
      replayed := true;
      RETURN;
    END IF;
    IF v_tombstoned THEN
      RAISE EXCEPTION 'stream % is tombstoned', p_stream USING ERRCODE = 'ES410';
    END IF;
    RAISE EXCEPTION 'stream % is not at the expected version', p_stream
      USING ERRCODE = 'ES409',
            DETAIL = json_build_object('version', CASE WHEN v_version >= 0 THEN v_version END,
                                       'deleted', coalesce(v_deleted, false))::text;
  END IF;
  v_version := coalesce(v_version, -1);
  first_version := v_version + 1;
  last_version := v_version + jsonb_array_length(p_events);
  replayed := false;
  INSERT INTO event_store.events (stream_id, version, event_id, type, schema_version, data,
                                  metadata)
  SELECT p_stream, v_version + t.o, (t.e->>'id')::uuid, t.e->>'type',
         (t.e->>'schema_version')::int, t.e->'data', t.e->'metadata'
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t(e, o)
   ORDER BY t.o;
  IF v_found THEN
    UPDATE event_store.streams SET version = last_version, deleted = false, updated_at = now()
     WHERE stream_id = p_stream;
  ELSE  -- a metadata change may create the row meanwhile: it takes no stream lock
    INSERT INTO event_store.streams AS s (stream_id, version) VALUES (p_stream, last_version)
      ON CONFLICT (stream_id) DO UPDATE
      SET version = EXCLUDED.version, deleted = false, updated_at = now();
  END IF;
END $$;
"""

# One leader calls this in a loop. Every xid below the snapshot's xmin has finished and every new
# xid is at or above it, so nothing can later appear behind the cursor (design doc).
SEQUENCE_BATCH = r"""
CREATE FUNCTION event_store.sequence_batch(p_limit integer DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  s event_store.sequencer_state;
  h xid8 := pg_snapshot_xmin(pg_current_snapshot());
  v_moved bigint;
BEGIN
  SELECT * INTO s FROM event_store.sequencer_state WHERE id = 1 FOR UPDATE;
  WITH batch AS (
    SELECT e.stream_id, e.version, e.type, e.xid, e.ins_id,
           row_number() OVER (ORDER BY e.xid, e.ins_id) AS rn
      FROM event_store.events e
     WHERE (e.xid, e.ins_id) > (s.last_xid, s.last_ins_id) AND e.xid < h
     ORDER BY e.xid, e.ins_id
     LIMIT p_limit),
  ins AS (
    INSERT INTO event_store.global_log (position, stream_id, version, category, type)
    SELECT s.last_position + b.rn, b.stream_id, b.version, split_part(b.stream_id, '-', 1), b.type
      FROM batch b
    RETURNING 1),
  last AS (SELECT xid, ins_id, rn FROM batch ORDER BY rn DESC LIMIT 1)
  UPDATE event_store.sequencer_state
     SET last_xid = last.xid, last_ins_id = last.ins_id, last_position = s.last_position + last.rn
    FROM last
   WHERE id = 1 AND (SELECT count(*) FROM ins) >= 0;
  v_moved := (SELECT last_position FROM event_store.sequencer_state WHERE id = 1)
             - s.last_position;
  IF v_moved > 0 THEN
    PERFORM pg_notify('event_store_log', (s.last_position + v_moved)::text);
  END IF;
  RETURN v_moved;
END $$;
"""

FUNCTIONS = (
    "event_store.append(text, bigint, jsonb)",
    "event_store.replayed(text, jsonb)",
    "event_store.sequence_batch(integer)",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in (REPLAYED, APPEND, SEQUENCE_BATCH):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for function in FUNCTIONS:
            op.execute(f"DROP FUNCTION {function}")
