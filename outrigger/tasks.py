"""Background work: every loop of every service is a `Periodic`, stopped with `stop_task`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from outrigger.errors import OutriggerError
from outrigger.resilience.retry import Retry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger("outrigger.tasks")

# After a failing step: 0.1 s, then doubling up to 30 s (full jitter), until a step succeeds.
BACKOFF = Retry(attempts=1, base_delay=0.1, max_delay=30.0)


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
    """Runs `step` over and over in a task, until `stop()`.

    After a step that returns True (more work is waiting) the next one runs at once; otherwise
    after `interval` seconds, or sooner when `wake()` is called. A step that raises is logged in
    one line (a warning with the reason for the kit's errors, the stack trace for anything else)
    and tried again after `backoff`'s delay, which grows while failures repeat and starts over
    after a success. A step may also run for as long as it likes (a leader's work): `stop()`
    cancels it after `grace` seconds.

    `stop()` lets a step under way finish within `grace` instead of cancelling it at once: a
    query cancelled half-way can leave its connection behind (aiosqlite's worker thread then
    answers a loop that is gone).
    """

    def __init__(
        self,
        step: Callable[[], Awaitable[bool | None]],
        interval: float,
        *,
        name: str,
        grace: float = 5.0,
        backoff: Retry = BACKOFF,
    ) -> None:
        self.name = name
        self._step = step
        self._interval = interval
        self._grace = grace
        self._backoff = backoff
        self._stopping = asyncio.Event()
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self.run(), name=self.name)

    def wake(self) -> None:
        """Runs the next step now instead of at the end of the interval."""
        self._woken.set()

    async def stop(self) -> None:
        """Ends the loop after the step under way (cancelled past `grace`). A loop running in
        its caller's task (`run()`) is told to end, and this returns at once."""
        self._stopping.set()
        self._woken.set()
        task, self._task = self._task, None
        if task is None:
            return
        await asyncio.wait({task}, timeout=self._grace)
        await stop_task(task)

    async def run(self) -> None:
        """The loop itself, in the calling task (`start()` gives it a task of its own)."""
        failures = 0
        while not self._stopping.is_set():
            self._woken.clear()
            try:
                more = await self._step()
            except Exception as exc:
                failures += 1
                delay = self._backoff.delay(failures)
                self._log_failure(exc, delay)
                await self._pause(delay)
                continue
            failures = 0
            if not more:
                await self._pause(self._interval)

    def _log_failure(self, exc: Exception, delay: float) -> None:
        if isinstance(exc, OutriggerError):
            log.warning("%s: %s; next try in %.1f s", self.name, exc.detail, delay)
        else:
            log.exception("%s failed; next try in %.1f s", self.name, delay)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._woken.wait()
