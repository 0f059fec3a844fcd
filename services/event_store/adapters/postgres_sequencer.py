"""The sequencer: the one elected process that fills the global log (ARCHITECTURE §5).

Every replica may run a `PostgresSequencer`; each holds a dedicated connection and tries
`pg_try_advisory_lock` on it, and the one that gets the lock leads. The leader calls the
`sequence_batch` stored function in a loop: at once again after a full batch, after
`poll_interval` otherwise. The function notifies `event_store_log` once per non-empty batch
(never per append), which wakes `wait_for_log` callers everywhere. If the leader's connection
drops, PostgreSQL releases the lock and another replica (or this one, once it reconnects) takes
over; the cursor lives in the database, so nothing is lost or moved twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from prometheus_client import Counter, Gauge

from outrigger.tasks import stop_task
from services.event_store.adapters.postgres_connection import connect
from services.event_store.adapters.postgres_sql import SEQUENCE_BATCH

# Two int4 keys: a key space apart from the one-bigint keys that lock streams.
LEADER_LOCK = "SELECT pg_try_advisory_lock(1702261619, 1)"

APPLICATION_NAME = "outrigger-event-store-sequencer"

LEADER = Gauge("outrigger_event_store_sequencer_leader", "1 while this process sequences the log.")
SEQUENCED = Counter(
    "outrigger_event_store_sequenced_events_total", "Events moved into the global log here."
)
log = logging.getLogger("outrigger.event_store.sequencer")


class PostgresSequencer:
    """`start()` in the lifespan, `stop()` at shutdown; `leader` says whether it sequences."""

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 10_000,
        poll_interval: float = 0.005,
        election_interval: float = 1.0,
    ) -> None:
        self._url = url
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._election_interval = election_interval
        self._task: asyncio.Task[None] | None = None
        self.leader = False

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-store-sequencer")

    async def stop(self) -> None:
        """Stops sequencing; closing the connection hands leadership to another replica."""
        task, self._task = self._task, None
        await stop_task(task)

    async def _run(self) -> None:
        while True:
            try:
                async with await connect(self._url, APPLICATION_NAME) as connection:
                    await self._elect(connection)
                    await self._sequence(connection)
            except (psycopg.Error, OSError) as exc:
                if self.leader:
                    log.warning("sequencer lost its connection (%s); leadership released", exc)
                else:
                    log.warning("sequencer cannot reach the database (%s); retrying", exc)
            except Exception:
                log.exception("sequencer failed; it reconnects and stands for election again")
            finally:
                if self.leader:
                    self.leader = False
                    LEADER.set(0)
            await asyncio.sleep(self._election_interval)

    async def _elect(self, connection: psycopg.AsyncConnection[Any]) -> None:
        while True:
            cursor = await connection.execute(LEADER_LOCK)
            row = await cursor.fetchone()
            if row and row[0]:
                self.leader = True
                LEADER.set(1)
                log.info("this process now sequences the event log")
                return
            await asyncio.sleep(self._election_interval)

    async def _sequence(self, connection: psycopg.AsyncConnection[Any]) -> None:
        while True:
            cursor = await connection.execute(SEQUENCE_BATCH, (self._batch_size,))
            row = await cursor.fetchone()
            moved = int(row[0]) if row else 0
            if moved:
                SEQUENCED.inc(moved)
            if moved < self._batch_size:
                await asyncio.sleep(self._poll_interval)
