"""The query-backed gauges of the event store, refreshed in the background (never per scrape)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from outrigger.tasks import Periodic
from services.event_store.metrics import (
    HEAD_POSITION,
    OLDEST_TRANSACTION,
    RELAY_LAG,
    SEQUENCER_DELAY,
)

if TYPE_CHECKING:
    from services.event_store.domain import EventStore, SequencedLog


class LogGauges:
    """Sets the head, relay lag and (for a `SequencedLog`) sequencer gauges every `interval`."""

    def __init__(
        self,
        store: EventStore,
        sequenced: SequencedLog | None,
        *,
        relay_checkpoint: str,
        interval: float,
    ) -> None:
        self._store = store
        self._sequenced = sequenced
        self._relay_checkpoint = relay_checkpoint
        self._periodic = Periodic(self.refresh, interval, name="event-store-gauges")

    async def refresh(self) -> None:
        """One refresh of every gauge (the background task calls it; tests may too)."""
        head = await self._store.head_position()
        relayed = await self._store.get_checkpoint(self._relay_checkpoint)
        HEAD_POSITION.set(head)
        RELAY_LAG.set(max(0, head - relayed))
        if self._sequenced is not None:
            SEQUENCER_DELAY.set(await self._sequenced.sequencer_delay() or 0.0)
            OLDEST_TRANSACTION.set(await self._sequenced.oldest_transaction_age() or 0.0)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
