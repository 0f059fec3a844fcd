"""Migrated databases for the audit tests, and the audit app on each of them (`api`).

PostgreSQL: one database per test session, `audit_test_<random>`, created on the server,
migrated with the real Alembic branches and dropped at the end, so that retention (which drops
whole months of every tenant) touches no other run. SQLite: one migrated template per session,
copied into each test's own folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from outrigger.cli.migrate import upgrade
from outrigger.settings import Settings
from tests.audit.api_support import BACKENDS, Api, database_for, running, settings_for
from tests.conftest import POSTGRES_URL
from tests.databases import migrated_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path


@pytest.fixture(scope="session")
def audit_postgres_url() -> Iterator[str]:
    with migrated_database(POSTGRES_URL, "audit_test") as url:
        yield url


@pytest.fixture(scope="session")
def audit_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("audit_template")
    upgrade(Settings(database_url=f"sqlite+aiosqlite:///{folder / 'outrigger.db'}"))
    return folder


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of each backend: a SQLite copy, or the session's PostgreSQL one."""
    return database_for(request.param, request, tmp_path)


@pytest.fixture
async def api(database: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The audit app on `database`, running, behind an in-process client holding every scope."""
    async with running(settings_for(database, tmp_path)) as api:
        yield api
