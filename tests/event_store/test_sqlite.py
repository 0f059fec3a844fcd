"""The contract suite on the embedded SQLite adapter, plus what only SQLite does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from services.event_store.adapters.sqlite import SqliteEventStore
from tests.databases import copy_sqlite
from tests.event_store.contract import EventStoreContract
from tests.event_store.suite import batch, new_stream

if TYPE_CHECKING:
    from pathlib import Path

    from services.event_store.domain import EventStore


class TestSqliteEventStore(EventStoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path, sqlite_template: Path) -> None:
        self.url = copy_sqlite(sqlite_template, tmp_path)

    async def make_store(self) -> EventStore:
        return SqliteEventStore.open(self.url, poll_interval=0.1)

    async def test_positions_are_assigned_at_append_time(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, batch(2))
        page = await store.read_stream(stream)
        assert [e.global_position for e in page.events] == [1, 2]
        assert await store.head_position() == 2

    async def test_another_process_on_the_same_file_wakes_waiters_by_polling(
        self, store: EventStore
    ) -> None:
        other = SqliteEventStore.open(self.url)
        try:
            await other.append(new_stream(), batch(1))
        finally:
            await other.close()
        assert await store.wait_for_log(0, max_wait=2) == 1
