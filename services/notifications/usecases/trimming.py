"""The trim loop's step: drops what is too old from history, and measures what it keeps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from services.notifications.metrics import HISTORY_CHANNELS, HISTORY_MESSAGES

if TYPE_CHECKING:
    from services.notifications.domain import History

EVERY_CHANNEL: Final = (">",)


class HistoryTrim:
    """A step for `outrigger.tasks.Periodic`: `History.trim()` (safe on every replica at once),
    then the history gauges."""

    def __init__(self, history: History) -> None:
        self.history = history

    async def __call__(self) -> None:
        await self.history.trim()
        channels = await self.history.channels(EVERY_CHANNEL)
        messages = 0
        for name in channels:
            messages += (await self.history.describe(name)).length
        HISTORY_CHANNELS.set(len(channels))
        HISTORY_MESSAGES.set(messages)
