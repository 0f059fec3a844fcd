"""audit records: pages of a time window ordered by (time, idx), on (tenant, time DESC, idx DESC)

A page of a `from`/`to` window was ordered by index while the window bounds `time`: PostgreSQL
either walked `(tenant, idx DESC)` skipping rows out of the window (slow far from the newest)
or took the window's rows from `(tenant, time)` (audit_0002) and sorted them (slow for a wide
window). A window's page is now ordered by (time DESC, idx DESC), its cursor both, and this index
answers it as one range, newest first, whatever the window's size or age: no sort, nothing
skipped. It replaces `(tenant, time)`, which it covers.

On SQLite too: with the page's order and its range in one index, SQLite takes it without
statistics. Built on the partitioned table, it is built on every partition and on each one
created from now on; the build holds appends back while it runs (seconds at a million rows).

Revision ID: audit_0003
Revises: audit_0002
Create Date: 2026-12-06 18:00:00
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alembic import op

if TYPE_CHECKING:
    from collections.abc import Sequence

revision: str = "audit_0003"
down_revision: str | Sequence[str] | None = "audit_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX records_tenant_time_idx ON audit.records (tenant, time DESC, idx DESC)"
        )
        op.execute("DROP INDEX audit.records_tenant_time")
    else:
        op.execute(
            "CREATE INDEX audit.records_tenant_time_idx ON records (tenant, time DESC, idx DESC)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX records_tenant_time ON audit.records (tenant, time)")
    op.execute("DROP INDEX audit.records_tenant_time_idx")
