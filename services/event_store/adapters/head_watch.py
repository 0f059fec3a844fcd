"""The global log's head as last seen, and the tasks waiting for it to move.

Both adapters feed it (on NOTIFY, on their own appends, on a periodic poll); any number of
waiters share it, so waiting costs no query per waiter.
"""

from __future__ import annotations

import asyncio
import contextlib


class HeadWatch:
    def __init__(self) -> None:
        self.head = 0
        self._moved = asyncio.Event()

    def advance(self, head: int) -> None:
        """Records a head seen somewhere; wakes every waiter if it moved forward."""
        if head > self.head:
            self.head = head
            moved, self._moved = self._moved, asyncio.Event()
            moved.set()

    async def wait(self, after_position: int, max_wait: float) -> int:
        """The head once it passes `after_position`, or the head seen after `max_wait` seconds."""
        if self.head > after_position or max_wait <= 0:
            return self.head
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max_wait):
                while self.head <= after_position:
                    await self._moved.wait()
        return self.head
