"""What the hub's contract suites share: drafts as the use-case room hands them over, and a
follower that drains `History.follow()` in a task of its own."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from services.notifications.domain import Draft, Interrupted, Message

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from services.notifications.domain import History

PROBE = "probe"
WAIT_SECONDS = 10.0


def draft(
    *channels: str, event: str = "created", data: bytes = b"{}", key: str | None = None
) -> Draft:
    return Draft(channels, event, data, key)


class Follower:
    """Everything one `follow()` iterator yields, collected by a task; `ended` once it returned."""

    def __init__(self, history: History) -> None:
        self.items: list[Message | Interrupted] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._drain(history))

    async def _drain(self, history: History) -> None:
        try:
            async for item in history.follow():
                self.items.append(item)
                self._changed.set()
        finally:
            self._changed.set()

    @property
    def ended(self) -> bool:
        return self._task.done()

    @property
    def messages(self) -> list[Message]:
        """The messages received, without the probes."""
        return [m for m in self.items if isinstance(m, Message) and m.channel != PROBE]

    async def until(self, done: Callable[[], bool]) -> None:
        """Returns once `done()` holds; fails after `WAIT_SECONDS` (a test waits for an event,
        never for a time)."""
        async with asyncio.timeout(WAIT_SECONDS):
            while not done():
                if self.ended:
                    self._task.result()
                    assert done(), f"the feed ended early with {self.items}"
                self._changed.clear()
                await self._changed.wait()

    async def ready(self, publisher: History) -> None:
        """Returns once the feed delivers what `publisher` publishes: from then on it delivers
        everything (a subscription to a backend takes effect some time after `follow()`)."""
        async with asyncio.timeout(WAIT_SECONDS):
            while not any(isinstance(m, Message) and m.channel == PROBE for m in self.items):
                await publisher.publish(draft(PROBE, event="probe"))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.1):
                        self._changed.clear()
                        await self._changed.wait()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def following(history: History, publisher: History) -> AsyncIterator[Follower]:
    """A follower of `history`, ready for what `publisher` publishes; stopped afterwards."""
    follower = Follower(history)
    try:
        await follower.ready(publisher)
        yield follower
    finally:
        await follower.stop()
