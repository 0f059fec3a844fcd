"""Follows the sequencer's notifications so `wait_for_log` callers wake up when the log grows.

One dedicated connection LISTENs on `event_store_log` (one NOTIFY per sequenced batch, payload =
new head) and re-reads the head every `poll_interval` seconds anyway, so a lost notification or a
dropped connection delays waiters by at most that long. It reconnects by itself (the kit loop's
backoff).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from outrigger.tasks import Periodic
from services.event_store.adapters.postgres_errors import translated
from services.event_store.adapters.postgres_sql import HEAD

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import psycopg

    from services.event_store.adapters.head_watch import HeadWatch

CHANNEL = "event_store_log"


class LogListener:
    def __init__(
        self,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
        watch: HeadWatch,
        *,
        poll_interval: float = 1.0,
    ) -> None:
        self._connect = connect
        self._watch = watch
        self._poll_interval = poll_interval
        self._loop = Periodic(
            self._listen, poll_interval, name="event-store-log-listener", grace=0.5
        )
        self.connected = False

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _listen(self) -> None:
        """Follows the notifications until the connection fails (the loop then reconnects)."""
        try:
            with translated():
                async with await self._connect() as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self.connected = True
                    await self._follow(connection)
        finally:
            self.connected = False

    async def _follow(self, connection: psycopg.AsyncConnection[Any]) -> None:
        while True:
            cursor = await connection.execute(HEAD)
            row = await cursor.fetchone()
            self._watch.advance(int(row[0]) if row else 0)
            async for notify in connection.notifies(timeout=self._poll_interval):
                with contextlib.suppress(ValueError):
                    self._watch.advance(int(notify.payload))
