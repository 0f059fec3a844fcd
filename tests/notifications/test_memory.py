"""The hub's contracts on the in-memory adapters (the embedded default, one process)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.notifications.adapters.memory import MemoryHistory, MemoryPresence
from tests.notifications.contract import HistoryContract, PresenceContract

if TYPE_CHECKING:
    from services.notifications.domain import History
    from tests.notifications.contract import NewHistory

BOUNDS = {"max_length": 1000, "max_age_seconds": 3600.0, "dedupe_seconds": 3600.0}


class TestMemoryHistory(HistoryContract):
    async def make_adapter(self, **bounds: Any) -> MemoryHistory:
        return MemoryHistory(**{**BOUNDS, **bounds})

    async def make_replica(
        self, adapter: History, new_adapter: NewHistory, **bounds: Any
    ) -> History:
        return adapter  # one process: the only replica there is


class TestMemoryPresence(PresenceContract):
    async def make_adapter(self) -> MemoryPresence:
        return MemoryPresence()
