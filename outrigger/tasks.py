"""Background tasks: stopping one for good, and running a step periodically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger("outrigger.tasks")


async def stop_task(task: asyncio.Task[Any] | None, *, grace: float = 1.0) -> None:
    """Cancels `task` and returns once it has ended (at once for `None` or a finished task).

    A task still running `grace` seconds after a cancel is cancelled again: on Python 3.11,
    `asyncio.wait_for` inside libraries (psycopg_pool handing over a connection, redis-py)
    swallows a cancellation that lands as the awaited thing completes, and after a single cancel
    the task would run on with its caller waiting forever. The grace lets a cancelled task finish
    its cleanup (returning a connection) undisturbed. A failure of the task is retrieved, not
    raised: it was being stopped.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=grace)
    if not task.cancelled():
        task.exception()


class Periodic:
    """Runs `step` now and then every `interval` seconds in a task, until `stop()`.

    `stop()` lets a step that is under way finish (up to `grace` seconds) instead of cancelling
    it mid-flight: a query cancelled half-way can leave its connection behind (aiosqlite's
    worker thread then answers a loop that is gone). Errors of a step are the step's to handle;
    one that escapes is logged and the next step runs on time.
    """

    def __init__(
        self, step: Callable[[], Awaitable[Any]], interval: float, *, name: str, grace: float = 5.0
    ) -> None:
        self._step = step
        self._interval = interval
        self._name = name
        self._grace = grace
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        await asyncio.wait({task}, timeout=self._grace)
        await stop_task(task)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._step()
            except Exception:
                log.exception("%s failed; next try in %g s", self._name, self._interval)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._stopping.wait()
