"""The contract suite on PostgreSQL, plus the sequencer and what only PostgreSQL does."""

from __future__ import annotations

import pytest

from services.event_store.adapters.postgres import PostgresEventStore
from services.event_store.domain import EventStore
from tests.event_store.contract import EventStoreContract


@pytest.mark.postgres
class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, event_store_postgres_url: str) -> None:
        self.url = event_store_postgres_url

    async def make_store(self) -> EventStore:
        return await PostgresEventStore.open(self.url, max_size=4)
