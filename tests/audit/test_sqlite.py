"""The audit log's contract on the embedded SQLite adapter, plus what only SQLite does."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.exc import IntegrityError

from services.audit.adapters.sqlite import SqliteAuditLog
from tests.audit import rfc9162
from tests.audit.contract import AuditLogContract
from tests.audit.storage_support import leaves
from tests.databases import copy_sqlite

if TYPE_CHECKING:
    from pathlib import Path


class TestSqliteAuditLog(AuditLogContract):
    WRITE_ERROR = IntegrityError

    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path, audit_sqlite_template: Path) -> None:
        self.url = copy_sqlite(audit_sqlite_template, tmp_path)

    async def make_adapter(self, **options: Any) -> SqliteAuditLog:
        return SqliteAuditLog.open(self.url)

    async def test_two_logs_on_one_file_never_fork_a_tree(self, tenant: str) -> None:
        logs = [SqliteAuditLog.open(self.url) for _ in range(2)]
        batches = [leaves(tenant, 5) for _ in range(8)]
        try:
            answers = await asyncio.gather(
                *(logs[n % 2].append(batch) for n, batch in enumerate(batches))
            )
            by_index = {a.index: a.leaf_hash for batch in answers for a in batch}
            assert sorted(by_index) == list(range(40))
            head = await logs[0].head(tenant)
            assert head.root == rfc9162.mth([by_index[i] for i in range(40)])
        finally:
            for log in logs:
                await log.close()
