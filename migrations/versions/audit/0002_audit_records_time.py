"""audit records: an index on (tenant, time), for pages of a narrow time window

A page filtered by `from`/`to` alone had only `(tenant, idx DESC)` to walk: newest first, row by
row, until enough rows fell in the window. For an old, narrow window at a million rows that is
nearly the whole tenant. With `(tenant, time)` PostgreSQL finds the window's rows directly when
the window is the most selective filter, and sorts only them (`ORDER BY idx DESC LIMIT`: the
page is the same, newest first); a wide window still walks `(tenant, idx DESC)`. The planner
picks by the statistics of each partition, from one query text.

PostgreSQL only: the embedded SQLite log is small, and SQLite, without statistics, would take
the range index for wide windows too and sort all of them. Built on the partitioned table, it is
built on every partition and on each one created from now on; the build holds appends back
while it runs (seconds at a million rows).

Revision ID: audit_0002
Revises: audit_0001
Create Date: 2026-12-06 17:30:00
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic import op

if TYPE_CHECKING:
    from collections.abc import Sequence

revision: str = "audit_0002"
down_revision: str | Sequence[str] | None = "audit_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX records_tenant_time ON audit.records (tenant, time)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX audit.records_tenant_time")
