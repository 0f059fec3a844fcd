"""The hub of one process: its open connections, the one task that feeds them from history's live
feed, and the one task that keeps them (heartbeats, send timeouts, presence).

Each message is encoded as an SSE frame once and offered to the connections that follow its
channel: those subscribed to the channel by name (a dict of sets), and those subscribed by a
pattern that follows it (the patterns following a channel are worked out once and kept until
the set of patterns changes). When the feed was cut (`Interrupted`, or the feed failing), the
hub reads history after the last message it delivered, for every channel its connections
follow, and offers that first; connections drop what they had already.

Nothing here runs per connection: heartbeats are one pass over the connections every
`heartbeat_seconds`, and a stream whose send has been pending for `send_timeout_seconds` (a
client that stopped reading, or is gone without a word) is closed by the same periodic pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Final

from outrigger.errors import OutriggerError
from outrigger.http.sse import chunked
from outrigger.sse import comment
from outrigger.tasks import Periodic
from services.notifications.domain import HistoryId, Interrupted, follows, is_pattern
from services.notifications.metrics import (
    CONNECTIONS,
    DELIVERIES,
    DELIVERY_SECONDS,
    FEED_INTERRUPTIONS,
)
from services.notifications.usecases.connections import (
    REPLAY_PAGE,
    SEND_TIMEOUT,
    SHUTDOWN,
    frame,
    position,
)

if TYPE_CHECKING:
    from services.notifications.domain import History, Message, Presence
    from services.notifications.usecases.connections import Connection, Limits

HEARTBEAT: Final = comment("heartbeat")
HEARTBEAT_CHUNK: Final = chunked(HEARTBEAT)
FEED_RETRY_SECONDS: Final = 1.0  # after the feed ended without an error (history closed)
MATCH_CACHE_SIZE: Final = 10_000  # channels whose following patterns are remembered
log = logging.getLogger("outrigger.notifications")


class Hub:
    """The connections of this process and what feeds them (module doc)."""

    def __init__(
        self,
        history: History,
        presence: Presence,
        limits: Limits,
        *,
        heartbeat_seconds: float,
        send_timeout_seconds: float,
        presence_seconds: float,
        replica: str | None = None,
    ) -> None:
        self.history = history
        self.presence = presence
        self.limits = limits
        self.heartbeat_seconds = heartbeat_seconds
        self.send_timeout_seconds = send_timeout_seconds
        self.presence_seconds = presence_seconds
        self.replica = replica or uuid.uuid4().hex
        self.connections: set[Connection] = set()
        self._by_name: dict[str, set[Connection]] = {}
        self._by_pattern: dict[str, set[Connection]] = {}
        self._matching: dict[str, tuple[str, ...]] = {}  # channel → the patterns following it
        self._last = 0  # the position of the last message delivered
        self._delivered: HistoryId = HistoryId(time.time_ns() // 1_000_000, 0)
        self._feed_cut = False
        tick = min(heartbeat_seconds, send_timeout_seconds / 2, presence_seconds)
        # the feed's step lasts as long as the feed: nothing is lost by cancelling it at once
        self._feed = Periodic(
            self._follow, FEED_RETRY_SECONDS, name="notifications-feed", grace=0.0
        )
        self._keeper = Periodic(self._keep, tick, name="notifications-keeper")
        self._next_heartbeat = self._next_report = 0.0

    @property
    def last_position(self) -> int:
        """The position of the last message delivered (0 before the first)."""
        return self._last

    async def start(self) -> None:
        self._feed.start()
        self._keeper.start()
        await asyncio.sleep(0)  # the feed's task starts following before anything is published

    async def stop(self) -> None:
        """Stops both tasks, closes every connection left, withdraws this replica's counts."""
        await self._keeper.stop()
        await self._feed.stop()
        for connection in list(self.connections):
            connection.close(SHUTDOWN)
        try:
            await self.presence.report(self.replica, {}, self.presence_seconds * 3)
        except OutriggerError as exc:
            log.warning("could not withdraw this replica's subscriber counts: %s", exc.detail)

    # --- connections -----------------------------------------------------------------------

    def register(self, connection: Connection) -> None:
        """Offers `connection` every message delivered from now on that it follows."""
        connection.hub = self
        self.connections.add(connection)
        for subscription in connection.subscriptions:
            index = self._by_pattern if is_pattern(subscription) else self._by_name
            followers = index.get(subscription)
            if followers is None:
                followers = index[subscription] = set()
                if index is self._by_pattern:
                    self._matching.clear()
            followers.add(connection)
        CONNECTIONS.inc()

    def drop(self, connection: Connection) -> None:
        """Offers `connection` nothing more (called when it closes)."""
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        for subscription in connection.subscriptions:
            index = self._by_pattern if is_pattern(subscription) else self._by_name
            followers = index.get(subscription)
            if followers is None:
                continue
            followers.discard(connection)
            if not followers:
                del index[subscription]
                if index is self._by_pattern:
                    self._matching.clear()
        CONNECTIONS.dec()

    async def report_presence(self) -> None:
        """Reports this replica's counts to `Presence` now (the keeper does every few seconds)."""
        await self.presence.report(self.replica, self.counts(), self.presence_seconds * 3)

    def counts(self) -> dict[str, int]:
        """Open connections per subscription (a channel or a pattern)."""
        return {
            subscription: len(followers)
            for index in (self._by_name, self._by_pattern)
            for subscription, followers in index.items()
        }

    # --- the feed --------------------------------------------------------------------------

    async def _follow(self) -> None:
        """The feed's step: refills if the feed was cut before, then follows until it ends."""
        if self._feed_cut:
            await self._refill()
        self._feed_cut = True  # whatever ends this step, what follows may have been missed
        async for item in self.history.follow():
            if isinstance(item, Interrupted):
                FEED_INTERRUPTIONS.inc()
                await self._refill()
            else:
                self.deliver(item)

    async def _refill(self) -> None:
        """Delivers from history what the feed may have missed."""
        followed = [*self._by_name, *self._by_pattern]
        if not followed:
            return
        channels = await self.history.channels(followed)
        after = self._delivered
        while channels:
            page = await self.history.read(channels, after, REPLAY_PAGE)
            for message in page:
                self.deliver(message)
            if len(page) < REPLAY_PAGE:
                break
            after = page[-1].id

    def deliver(self, message: Message) -> None:
        """Offers `message` (once encoded) to every connection that follows its channel."""
        at = position(message.id)
        if at <= self._last:
            return  # delivered already (a refill overlapping the feed)
        self._last = at
        self._delivered = message.id
        channel = message.channel
        named = self._by_name.get(channel)
        patterns = self._patterns_following(channel)
        if named or patterns:
            data = frame(message)
            chunk = chunked(data)
            offered = 0
            for followers in (named or (), *(self._by_pattern[p] for p in patterns)):
                for connection in tuple(followers):  # an offer may close (and drop) one
                    connection.offer(at, data, chunk)
                offered += len(followers)
            DELIVERIES.inc(offered)
        DELIVERY_SECONDS.observe(max(time.time() - message.id.ms / 1000, 0.0))

    def _patterns_following(self, channel: str) -> tuple[str, ...]:
        found = self._matching.get(channel)
        if found is None:
            if len(self._matching) >= MATCH_CACHE_SIZE:
                self._matching.clear()
            found = tuple(pattern for pattern in self._by_pattern if follows(pattern, channel))
            self._matching[channel] = found
        return found

    # --- keeping the connections -----------------------------------------------------------

    async def _keep(self) -> None:
        """The keeper's step: heartbeats when due, send timeouts, presence when due."""
        now = asyncio.get_running_loop().time()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.heartbeat_seconds
            for connection in self.connections:
                if not connection.frames and connection.replay is None:
                    connection.push(HEARTBEAT, HEARTBEAT_CHUNK)
        self._time_out_sends(now)
        if now >= self._next_report:
            self._next_report = now + self.presence_seconds
            try:
                await self.report_presence()
            except OutriggerError as exc:
                log.warning("could not report this replica's subscriber counts: %s", exc.detail)

    def _time_out_sends(self, now: float) -> None:
        began_before = now - self.send_timeout_seconds
        for connection in tuple(self.connections):
            stream = connection.stream
            if stream is None or stream.sending_since is None:
                continue
            if stream.sending_since <= began_before:
                connection.close(SEND_TIMEOUT)
                stream.time_out(self.send_timeout_seconds)
