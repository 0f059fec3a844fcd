"""Follows the sequencer's notifications so `wait_for_log` callers wake up when the log grows.

One dedicated connection LISTENs on `event_store_log` (one NOTIFY per sequenced batch, payload =
new head) and re-reads the head every `poll_interval` seconds anyway, so a lost notification or a
dropped connection delays waiters by at most that long. It reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import psycopg

from outrigger.tasks import stop_task
from services.event_store.adapters.postgres_connection import connect
from services.event_store.adapters.postgres_sql import HEAD

if TYPE_CHECKING:
    from services.event_store.adapters.head_watch import HeadWatch

CHANNEL = "event_store_log"
log = logging.getLogger("outrigger.event_store.listener")


class LogListener:
    def __init__(
        self, url: str, watch: HeadWatch, *, poll_interval: float = 1.0, retry: float = 1.0
    ) -> None:
        self._url = url
        self._watch = watch
        self._poll_interval = poll_interval
        self._retry = retry
        self._task: asyncio.Task[None] | None = None
        self.connected = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-store-log-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _run(self) -> None:
        while True:
            try:
                async with await connect(self._url, "outrigger-event-store-listener") as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self.connected = True
                    await self._follow(connection)
            except (psycopg.Error, OSError) as exc:
                log.warning("log listener lost its connection (%s); reconnecting", exc)
            except Exception:
                log.exception("log listener failed; reconnecting")
            finally:
                self.connected = False
            await asyncio.sleep(self._retry)

    async def _follow(self, connection: psycopg.AsyncConnection[Any]) -> None:
        while True:
            cursor = await connection.execute(HEAD)
            row = await cursor.fetchone()
            self._watch.advance(int(row[0]) if row else 0)
            async for notify in connection.notifies(timeout=self._poll_interval):
                with contextlib.suppress(ValueError):
                    self._watch.advance(int(notify.payload))
