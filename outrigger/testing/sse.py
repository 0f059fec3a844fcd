"""Reading a Server-Sent Events response in a test, frame by frame, heartbeats included."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from outrigger.sse import frames

if TYPE_CHECKING:
    import httpx

    from outrigger.sse import Frame

FRAME_WAIT_SECONDS = 10.0


class EndOfStream(Exception):
    """The server ended the response."""


class SseReader:
    """The frames of a streaming `httpx.Response`, parsed by the kit's `outrigger.sse.frames`."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._frames = frames(response.aiter_lines())

    async def frame(self, max_wait: float = FRAME_WAIT_SECONDS) -> Frame:
        """The next frame (heartbeats included); `EndOfStream` when the response ends."""
        async with asyncio.timeout(max_wait):
            async for frame in self._frames:
                return frame
        raise EndOfStream("the server ended the stream")

    async def message(self, max_wait: float = FRAME_WAIT_SECONDS) -> Frame:
        """The next frame that is not a heartbeat."""
        while (frame := await self.frame(max_wait)).is_heartbeat:
            pass
        return frame

    async def messages_until(self, event: str) -> list[Frame]:
        """The messages before the next one named `event` (which is consumed)."""
        found = []
        while (frame := await self.message()).event != event:
            found.append(frame)
        return found

    async def messages(self, count: int) -> list[Frame]:
        """The next `count` unnamed messages, skipping heartbeats and named ones."""
        found: list[Frame] = []
        while len(found) < count:
            frame = await self.message()
            if frame.event is None:
                found.append(frame)
        return found
