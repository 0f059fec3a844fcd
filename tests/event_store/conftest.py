"""Migrated databases for the event-store tests.

PostgreSQL: one database per test session, `es_test_<random>`, created on the server, migrated
with the real Alembic branch and dropped at the end. Concurrent test runs (other engineers, CI
jobs) therefore never see each other's events, and the global log of this session starts at 1.
Tests still use unique stream ids, so tests of one session do not depend on each other.

SQLite: one migrated template per session, copied into each test's own folder.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from outrigger.cli.migrate import upgrade
from outrigger.leadership import AdvisoryLockLeadership
from outrigger.settings import Settings
from services.event_store.adapters.postgres import PostgresEventStore
from services.event_store.adapters.postgres_connection import connect
from services.event_store.usecases import Sequencer
from services.event_store.usecases.sequencer import ELECTION
from tests.conftest import POSTGRES_URL
from tests.databases import migrated_database
from tests.event_store.api_support import BACKENDS, Api, database_for, running, settings_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from services.event_store.domain import EventStore, SequencedLog

SEQUENCER = "outrigger-test-sequencer"


@pytest.fixture(scope="session")
def event_store_postgres_url() -> Iterator[str]:
    with migrated_database(POSTGRES_URL) as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("event_store_template")
    upgrade(Settings(database_url=f"sqlite+aiosqlite:///{folder / 'outrigger.db'}"))
    return folder


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of each backend: a SQLite copy, or the session's PostgreSQL one."""
    return database_for(request.param, request, tmp_path)


@pytest.fixture
async def api(database: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app on `database`, running, behind an in-process client holding every scope."""
    async with running(settings_for(database, tmp_path)) as api:
        yield api


def sequencer_for(url: str, store: SequencedLog, *, election_interval: float = 1.0) -> Sequencer:
    """The service's sequencer on `store`, elected on `url` by connections named `SEQUENCER`."""
    leadership = AdvisoryLockLeadership(
        lambda: connect(url, SEQUENCER), ELECTION, check_interval=election_interval
    )
    return Sequencer(store, leadership, election_interval=election_interval)


async def settle(store: EventStore, max_wait: float = 20.0) -> None:
    """Waits until every appended event is in the global log (runs the sequencer's step).

    An embedded store numbers events as it appends them: there is nothing to wait for.
    """
    if not isinstance(store, PostgresEventStore):
        return
    async with asyncio.timeout(max_wait):
        while True:
            await store.sequence_batch()
            if await store.sequencer_delay() is None:
                return
            await asyncio.sleep(0.01)
