"""event store tables: streams, events, global log, snapshots, checkpoints, subject keys

On PostgreSQL events are stamped with their transaction id (xid8) and the sequencer copies them
into `global_log` in commit order (ARCHITECTURE §5). SQLite has one writer, so an event's
position is assigned when it is appended and lives on the `events` row.

Revision ID: event_store_0001
Revises:
Create Date: 2026-11-21 17:00:00
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op

if TYPE_CHECKING:
    from collections.abc import Sequence

revision: str = "event_store_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("event_store",)
depends_on: str | Sequence[str] | None = None

SCHEMA = "event_store"

POSTGRES = """
CREATE SCHEMA IF NOT EXISTS event_store;

CREATE TABLE event_store.streams (
  stream_id       text PRIMARY KEY,
  version         bigint NOT NULL DEFAULT -1,        -- last event's version; -1: none yet
  deleted_before  bigint NOT NULL DEFAULT 0,         -- versions below were soft-deleted
  deleted         boolean NOT NULL DEFAULT false,    -- soft-deleted, until the next append
  tombstoned      boolean NOT NULL DEFAULT false,    -- hard-deleted, for good
  max_age         bigint,                            -- seconds
  max_count       bigint,
  truncate_before bigint,
  custom          jsonb NOT NULL DEFAULT '{}',
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE event_store.events (
  stream_id      text   NOT NULL,
  version        bigint NOT NULL,
  event_id       uuid   NOT NULL,
  ins_id         bigint GENERATED ALWAYS AS IDENTITY,  -- order inside one transaction
  xid            xid8   NOT NULL DEFAULT pg_current_xact_id(),
  type           text   NOT NULL,
  schema_version integer NOT NULL DEFAULT 1,
  data           jsonb  NOT NULL,
  metadata       jsonb  NOT NULL DEFAULT '{}',
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream_id, version)
);
CREATE UNIQUE INDEX events_event_id ON event_store.events (event_id);
CREATE INDEX events_xid_ins ON event_store.events (xid, ins_id);

-- contiguous positions 1, 2, 3 ..., written only by the sequencer
CREATE TABLE event_store.global_log (
  position  bigint PRIMARY KEY,
  stream_id text   NOT NULL,
  version   bigint NOT NULL,
  category  text   NOT NULL,
  type      text   NOT NULL,
  CONSTRAINT global_log_event UNIQUE (stream_id, version)
);
CREATE INDEX global_log_category ON event_store.global_log (category, position);
CREATE INDEX global_log_type ON event_store.global_log (type, position);

CREATE TABLE event_store.sequencer_state (
  id            integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  last_xid      xid8   NOT NULL DEFAULT '0',
  last_ins_id   bigint NOT NULL DEFAULT 0,
  last_position bigint NOT NULL DEFAULT 0
);
INSERT INTO event_store.sequencer_state DEFAULT VALUES;

CREATE TABLE event_store.snapshots (
  stream_id  text PRIMARY KEY,
  version    bigint NOT NULL,
  state      jsonb  NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE event_store.checkpoints (
  name       text PRIMARY KEY,
  position   bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
"""

# Times are microseconds since the Unix epoch (UTC); JSON is stored as text.
SQLITE = [
    """CREATE TABLE event_store.streams (
      stream_id TEXT PRIMARY KEY, version INTEGER NOT NULL DEFAULT -1,
      deleted_before INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0,
      tombstoned INTEGER NOT NULL DEFAULT 0, max_age INTEGER, max_count INTEGER,
      truncate_before INTEGER, custom TEXT NOT NULL DEFAULT '{}',
      created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE event_store.events (
      position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, version INTEGER NOT NULL,
      event_id TEXT NOT NULL, type TEXT NOT NULL, category TEXT NOT NULL,
      schema_version INTEGER NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL,
      created_at INTEGER NOT NULL)""",
    "CREATE UNIQUE INDEX event_store.events_stream_version ON events (stream_id, version)",
    "CREATE UNIQUE INDEX event_store.events_event_id ON events (event_id)",
    "CREATE INDEX event_store.events_category ON events (category, position)",
    "CREATE INDEX event_store.events_type ON events (type, position)",
    """CREATE TABLE event_store.snapshots (
      stream_id TEXT PRIMARY KEY, version INTEGER NOT NULL, state TEXT NOT NULL,
      created_at INTEGER NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE event_store.checkpoints (
      name TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at INTEGER NOT NULL)
      WITHOUT ROWID""",
]

TABLES = ("checkpoints", "snapshots", "sequencer_state", "global_log", "events", "streams")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES)
    else:
        for statement in SQLITE:
            op.execute(statement)
    _subject_keys()


def _subject_keys() -> None:
    """Per-subject data keys for crypto-shredding: the kit's `stealth.subject_keys_table`."""
    op.create_table(
        "stealth_subject_keys",
        sa.Column("subject", sa.Text, primary_key=True),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("master_kid", sa.String(32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_stealth_subject_keys_master_kid", "stealth_subject_keys", ["master_kid"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_index("ix_stealth_subject_keys_master_kid", "stealth_subject_keys", schema=SCHEMA)
    op.drop_table("stealth_subject_keys", schema=SCHEMA)
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        if postgres or table not in ("sequencer_state", "global_log"):
            op.execute(f"DROP TABLE {SCHEMA}.{table}")
    if postgres:
        op.execute(f"DROP SCHEMA {SCHEMA}")
