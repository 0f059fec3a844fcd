"""The sequencer: the one elected process that fills a `SequencedLog` (ARCHITECTURE §5).

Every replica on PostgreSQL runs a `Sequencer`; the kit's election picks the one that sequences.
The leader calls `sequence_batch` in a loop: at once again after a full batch, after
`poll_interval` otherwise. The stored function notifies `event_store_log` once per non-empty
batch (never per append), which wakes `wait_for_log` callers everywhere. If the leader's lock
connection drops, PostgreSQL releases the lock and another replica (or this one, once it
reconnects) takes over; the cursor lives in the database, so nothing is lost or moved twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from outrigger.leadership import Elected
from outrigger.tasks import Periodic
from services.event_store.metrics import SEQUENCED

if TYPE_CHECKING:
    from outrigger.leadership import Leadership
    from services.event_store.domain import SequencedLog

ELECTION = "event_store.sequencer"


class Sequencer(Elected):
    """`start()` in the lifespan, `stop()` at shutdown (which hands leadership on)."""

    def __init__(
        self,
        log: SequencedLog,
        leadership: Leadership,
        *,
        batch_size: int = 10_000,
        poll_interval: float = 0.005,
        election_interval: float = 1.0,
    ) -> None:
        self._log = log
        self._batch_size = batch_size
        sequencing = Periodic(self.sequence, poll_interval, name="event-store-sequencing")
        super().__init__(
            leadership, sequencing, interval=election_interval, name="event-store-sequencer"
        )

    async def sequence(self) -> bool:
        """One batch; True when it was full (more events are waiting)."""
        moved = await self._log.sequence_batch(self._batch_size)
        if moved:
            SEQUENCED.inc(moved)
        return moved == self._batch_size
