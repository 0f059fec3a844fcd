"""event store: the W3C trace context of the request that appended each event

An event keeps the `traceparent` (and `tracestate`) current when it was appended, so the relay's
publish continues that trace and consumers continue it again. A separate column, not metadata:
a retry from another request is still the same append (idempotency compares content only). The
append function reads each event's `trace` member; callers that send none store NULL.

Revision ID: event_store_0003
Revises: event_store_0002
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic import op

if TYPE_CHECKING:
    from collections.abc import Sequence

revision: str = "event_store_0003"
down_revision: str | Sequence[str] | None = "event_store_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND = r"""
CREATE OR REPLACE FUNCTION event_store.append(p_stream text, p_expected bigint, p_events jsonb,
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
                                  metadata, trace)
  SELECT p_stream, v_version + t.o, (t.e->>'id')::uuid, t.e->>'type',
         (t.e->>'schema_version')::int, t.e->'data', t.e->'metadata', t.e->'trace'
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
PREVIOUS_APPEND = APPEND.replace("metadata, trace)", "metadata)").replace(", t.e->'trace'", "")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE event_store.events ADD COLUMN trace jsonb")
        op.execute(APPEND)
    else:
        op.execute("ALTER TABLE event_store.events ADD COLUMN trace TEXT")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PREVIOUS_APPEND)
    op.execute("ALTER TABLE event_store.events DROP COLUMN trace")
