"""One subscriber's stream as the hub sees it: a `Connection`, fed by the hub, taken from by
the kit's `FrameStream`.

A connection is what a hub holds ten thousand of, so it is small: slots, a list of frames (each
frame encoded once by the hub and shared by every connection it goes to), the position of the
last message it took, and one future while its stream waits. No task, no timer, no queue object.

Every message offered carries its history id as one integer (`position`); a connection takes a
message only if it lies beyond the last one it took. That is what lets history and the live feed
overlap without a duplicate: a resuming stream reads history while live messages pile up aside
(`Replay.live`), and when history has nothing more, only the live messages beyond what history
gave are kept; after the feed was cut, the hub refills from history and offers again what a
connection may have had already.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final, Literal

from outrigger.sse import encode
from services.notifications.metrics import DISCONNECTS, DROPPED_MESSAGES, REPLAYED

if TYPE_CHECKING:
    from collections.abc import Sequence

    from outrigger.http.sse import FrameStream
    from services.notifications.domain import History, HistoryId, Message
    from services.notifications.usecases.hub import Hub

REPLAY_PAGE: Final = 500
SLOW_CONSUMER: Final = "slow_consumer"
SEND_TIMEOUT: Final = "send_timeout"
SHUTDOWN: Final = "shutdown"
COUNTED_REASONS: Final = frozenset({SLOW_CONSUMER, SEND_TIMEOUT, SHUTDOWN})


def position(id: HistoryId) -> int:
    """A history id as one integer, ordered as the ids are: one comparison per offer."""
    return id.ms << 64 | id.seq


def frame(message: Message) -> bytes:
    """The SSE frame of a message: `id` its history id, `event` its name, `data` its JSON."""
    return encode(message.data, id=str(message.id), event=message.event)


class Limits:
    """What every connection of a hub shares: its queue bound and slow-consumer policy."""

    __slots__ = ("drop_oldest", "queue_size")

    def __init__(self, queue_size: int, policy: Literal["disconnect", "drop-oldest"]) -> None:
        self.queue_size = queue_size
        self.drop_oldest = policy == "drop-oldest"


class Replay:
    """A resuming connection's way through history: the channels it reads, where it is, and
    the live frames offered meanwhile (position, frame), merged when history ends."""

    __slots__ = ("after", "channels", "history", "live")

    def __init__(self, history: History, channels: Sequence[str], after: HistoryId) -> None:
        self.history = history
        self.channels = channels
        self.after = after
        self.live: list[tuple[int, bytes]] = []


class Connection:
    """One stream's frames: offered by the hub, taken by the stream (the kit's `FrameSource`)."""

    __slots__ = (
        "closed",
        "frames",
        "hub",
        "last",
        "limits",
        "replay",
        "stream",
        "subscriptions",
        "waiter",
    )

    def __init__(
        self,
        subscriptions: tuple[str, ...],
        limits: Limits,
        *,
        last: int,
        replay: Replay | None = None,
    ) -> None:
        self.subscriptions = subscriptions
        self.limits = limits
        self.last = last  # the position of the last message taken (or skipped)
        self.replay = replay  # while it reads history first
        self.frames: list[bytes] = []
        self.waiter: asyncio.Future[None] | None = None
        self.stream: FrameStream | None = None
        self.closed: str | None = None  # why, once closed
        self.hub: Hub | None = None  # the hub that feeds it, once registered

    # --- fed by the hub --------------------------------------------------------------------

    def offer(self, at: int, frame: bytes, chunk: bytes) -> None:
        """A live message's frame, at position `at` (`chunk`: the kit's `chunked(frame)`):
        written at once when nothing waits before it, else queued; dropped if taken already."""
        if at <= self.last or self.closed is not None:
            return
        self.last = at
        replay = self.replay
        if replay is not None:
            replay.live.append((at, frame))
            if len(replay.live) > self.limits.queue_size:
                self._overflow(replay.live)
            return
        frames = self.frames
        if not frames and self.stream is not None and self.stream.write_now(chunk):
            return
        frames.append(frame)
        if len(frames) > self.limits.queue_size:
            self._overflow(frames)
        self._wake()

    def push(self, frame: bytes, chunk: bytes) -> None:
        """A frame that is no message (a heartbeat): written or queued as `offer` does."""
        if self.closed is None:
            frames = self.frames
            if not frames and self.stream is not None and self.stream.write_now(chunk):
                return
            frames.append(frame)
            self._wake()

    def go_live(self, after: int, first: bytes) -> None:
        """Ends a replay without reading history: `first` (a reset frame), then the live
        messages beyond position `after`, then the live feed."""
        replay, self.replay = self.replay, None
        live = [] if replay is None else [frame for at, frame in replay.live if at > after]
        self.frames[:0] = [first, *live]
        self.last = max(self.last, after)
        self._wake()

    def _overflow(self, queue: list[bytes] | list[tuple[int, bytes]]) -> None:
        if self.limits.drop_oldest:
            del queue[0]
            DROPPED_MESSAGES.inc()
        else:
            self.close(SLOW_CONSUMER)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # --- taken by the stream ---------------------------------------------------------------

    def attach(self, stream: FrameStream) -> None:
        self.stream = stream

    async def take(self) -> bytes | None:
        """Every frame queued, joined; history first while the connection resumes."""
        while self.closed is None:
            if self.replay is not None:
                return await self._replay_page()
            if self.frames:
                body = b"".join(self.frames)
                self.frames.clear()
                return body
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            await waiter
        return None

    async def _replay_page(self) -> bytes:
        replay = self.replay
        assert replay is not None
        page: list[Message] = []
        if replay.channels:
            page = await replay.history.read(replay.channels, replay.after, REPLAY_PAGE)
        done = len(page) < REPLAY_PAGE  # history has nothing more
        if replay.live:
            # History up to the first live message, the live ones from it: a channel that a
            # pattern follows and that began after `channels` were looked up is only live,
            # and its messages come before later ones of the channels replayed.
            boundary = replay.live[0][0]
            before = [message for message in page if position(message.id) < boundary]
            done = done or len(before) < len(page)
            page = before
        if page:
            replay.after = page[-1].id
            REPLAYED.inc(len(page))
        frames = [frame(message) for message in page]
        if done:  # go live
            self.replay = None
            read = position(replay.after)
            frames += [live for at, live in replay.live if at > read]
            self.last = max(self.last, read)
            frames += self.frames
            self.frames.clear()
        return b"".join(frames)

    def close(self, reason: str) -> None:
        """Closes the connection (once; later calls change nothing): the hub drops it, its
        stream ends. A stream stuck in a send to a client that reads nothing is abandoned."""
        if self.closed is not None:
            return
        self.closed = reason
        if reason in COUNTED_REASONS:
            DISCONNECTS.labels(reason).inc()
        self._wake()
        stream, self.stream = self.stream, None  # no cycle left for the collector
        if stream is not None and reason in (SLOW_CONSUMER, SHUTDOWN):
            stream.abandon()
        if self.hub is not None:
            self.hub.drop(self)
