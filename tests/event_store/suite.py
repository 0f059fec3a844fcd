"""The base of the event-store contract suite: the adapter hook and shared helpers."""

from __future__ import annotations

import abc
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from services.event_store.domain import EventData
from tests.event_store.conftest import settle

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from services.event_store.domain import EventStore, RecordedEvent


def new_category() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def new_stream(category: str | None = None) -> str:
    """A stream id no other test uses: `<category>-<random>`."""
    return f"{category or new_category()}-{uuid.uuid4().hex[:8]}"


def batch(count: int, event_type: str = "Happened", **data: Any) -> list[EventData]:
    return [EventData(event_type, {"n": n, **data}) for n in range(count)]


def same_content(recorded: RecordedEvent, sent: EventData) -> bool:
    return (recorded.id, recorded.type, recorded.data, recorded.metadata) == (
        sent.id,
        sent.type,
        sent.data,
        sent.metadata,
    ) and recorded.schema_version == sent.schema_version


class SuiteBase(abc.ABC):
    """Subclasses say how to build the adapter under test."""

    @abc.abstractmethod
    async def make_store(self) -> EventStore:
        """Each adapter's subclass builds its own."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[EventStore]:
        store = await self.make_store()
        try:
            yield store
        finally:
            await store.close()

    async def versions(self, store: EventStore, stream_id: str) -> list[int]:
        page = await store.read_stream(stream_id, limit=1000)
        return [event.version for event in page.events]

    async def settle(self, store: EventStore) -> None:
        await settle(store)
