"""audit tables: records (monthly partitions), record keys, tree nodes, trees, checkpoints

A tenant's Merkle tree lives in `nodes` (level 0 = the leaf hashes, above them every perfect
subtree completed so far) and `trees` (its size, and the first index retention kept). Records
rows are kept apart from the tree: retention drops them, whole months at a time on PostgreSQL
(`records` is partitioned by `recorded_at`; the adapter creates each month's partition before
its first insert), and the nodes stay, so every proof and checkpoint still verifies.

No unique index can span partitions: `record_keys` holds `(source, id)` once (deduplication,
receipts). No unique index on `(tenant, idx)` either: rows that claim the same index are what
verification must find, not what the schema refuses. One writer per tenant locks its `trees`
row for the whole append.

Revision ID: audit_0001
Revises:
Create Date: 2026-12-06 16:30:00
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op

if TYPE_CHECKING:
    from collections.abc import Sequence

revision: str = "audit_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("audit",)
depends_on: str | Sequence[str] | None = None

SCHEMA = "audit"

POSTGRES = """
CREATE SCHEMA IF NOT EXISTS audit;

CREATE TABLE audit.records (
  tenant      text        NOT NULL,
  idx         bigint      NOT NULL,       -- the leaf's index in its tenant's tree
  source      text        NOT NULL,
  id          text        NOT NULL,
  type        text        NOT NULL,
  actor       text        NOT NULL,
  resource    text        NOT NULL,
  outcome     text        NOT NULL CONSTRAINT records_outcome
                          CHECK (outcome IN ('success', 'failure')),
  time        timestamptz NOT NULL,       -- the producer's time (`from`/`to` filters)
  recorded_at timestamptz NOT NULL,       -- when stored: the partition key
  body        bytea       NOT NULL,       -- the leaf, as hashed
  leaf_hash   bytea       NOT NULL
) PARTITION BY RANGE (recorded_at);
-- keyset pages, newest first, unfiltered or by one field
CREATE INDEX records_tenant_idx ON audit.records (tenant, idx DESC);
CREATE INDEX records_type ON audit.records (tenant, type, idx DESC);
CREATE INDEX records_actor ON audit.records (tenant, actor, idx DESC);
CREATE INDEX records_resource ON audit.records (tenant, resource, idx DESC);
CREATE INDEX records_outcome ON audit.records (tenant, outcome, idx DESC);

CREATE TABLE audit.record_keys (
  source    text   NOT NULL,
  id        text   NOT NULL,
  tenant    text   NOT NULL,
  idx       bigint NOT NULL,
  leaf_hash bytea  NOT NULL,
  CONSTRAINT record_keys_pkey PRIMARY KEY (source, id)
);
CREATE INDEX record_keys_id ON audit.record_keys (id);

CREATE TABLE audit.nodes (
  tenant text     NOT NULL,
  level  smallint NOT NULL,
  idx    bigint   NOT NULL,
  hash   bytea    NOT NULL,
  PRIMARY KEY (tenant, level, idx)
);

CREATE TABLE audit.trees (
  tenant        text   PRIMARY KEY,
  size          bigint NOT NULL DEFAULT 0,
  retained_from bigint NOT NULL DEFAULT 0  -- rows below were dropped by retention
);

CREATE TABLE audit.checkpoints (
  tenant    text        NOT NULL,
  size      bigint      NOT NULL,
  root      bytea       NOT NULL,
  issued_at timestamptz NOT NULL,
  note      text        NOT NULL,
  PRIMARY KEY (tenant, size)
);
"""

# Times are microseconds since the Unix epoch (UTC), as in the event store's SQLite tables.
SQLITE = [
    """CREATE TABLE audit.records (
      tenant TEXT NOT NULL, idx INTEGER NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL,
      type TEXT NOT NULL, actor TEXT NOT NULL, resource TEXT NOT NULL,
      outcome TEXT NOT NULL CONSTRAINT records_outcome CHECK (outcome IN ('success', 'failure')),
      time INTEGER NOT NULL, recorded_at INTEGER NOT NULL, body BLOB NOT NULL,
      leaf_hash BLOB NOT NULL)""",
    "CREATE INDEX audit.records_tenant_idx ON records (tenant, idx DESC)",
    "CREATE INDEX audit.records_type ON records (tenant, type, idx DESC)",
    "CREATE INDEX audit.records_actor ON records (tenant, actor, idx DESC)",
    "CREATE INDEX audit.records_resource ON records (tenant, resource, idx DESC)",
    "CREATE INDEX audit.records_outcome ON records (tenant, outcome, idx DESC)",
    "CREATE INDEX audit.records_recorded_at ON records (recorded_at)",
    """CREATE TABLE audit.record_keys (
      source TEXT NOT NULL, id TEXT NOT NULL, tenant TEXT NOT NULL, idx INTEGER NOT NULL,
      leaf_hash BLOB NOT NULL, PRIMARY KEY (source, id)) WITHOUT ROWID""",
    "CREATE INDEX audit.record_keys_id ON record_keys (id)",
    """CREATE TABLE audit.nodes (
      tenant TEXT NOT NULL, level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
      PRIMARY KEY (tenant, level, idx)) WITHOUT ROWID""",
    """CREATE TABLE audit.trees (
      tenant TEXT PRIMARY KEY, size INTEGER NOT NULL DEFAULT 0,
      retained_from INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID""",
    """CREATE TABLE audit.checkpoints (
      tenant TEXT NOT NULL, size INTEGER NOT NULL, root BLOB NOT NULL,
      issued_at INTEGER NOT NULL, note TEXT NOT NULL, PRIMARY KEY (tenant, size)) WITHOUT ROWID""",
]

TABLES = ("checkpoints", "trees", "nodes", "record_keys", "records")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES)
    else:
        for statement in SQLITE:
            op.execute(statement)
    _subject_keys()


def _subject_keys() -> None:
    """Per-subject data keys for sensitive fields: the kit's `stealth.subject_keys_table`."""
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
    for table in TABLES:  # on PostgreSQL, the monthly partitions go with `records`
        op.execute(f"DROP TABLE {SCHEMA}.{table}")
    if postgres:
        op.execute(f"DROP SCHEMA {SCHEMA}")
