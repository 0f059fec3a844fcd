"""The live feed: each `follow()` is a task holding a pub/sub subscription to the fan-out
channel, handing what it reads to the iterator through a queue (the hub drains it as fast as it
is fed, as in memory).

A fan-out message is the adapter's own compact form, one per publish, parsed without JSON:
`<event>\\n<key or nothing>\\n<id> <channel> <id> <channel>…\\n<data>` (events, keys, ids and
channels hold no whitespace; the data is passed on as the bytes published).

When the subscription breaks, the task subscribes again with the kit's backoff and, once Redis
confirms the subscription, queues `Interrupted`. redis-py may reconnect and resubscribe by itself
(its pool retries a broken connection once): a confirmation of a subscription already made says
so, and is an interruption too. A connection that goes silent (a server paused, a network cut)
is caught by a PING after `liveness_seconds` without a word, unanswered for as long again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from outrigger.tasks import BACKOFF, stop_task
from services.notifications.domain import HistoryId, Interrupted, Message

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

    Item = Message | Interrupted | None

log = logging.getLogger("outrigger.notifications")


def decode(payload: bytes) -> list[Message]:
    """The messages of one fan-out message, in id order."""
    event, key, stored, data = payload.split(b"\n", 3)
    name, given = event.decode(), key.decode() or None
    parts = stored.decode().split(" ")
    messages = []
    for index in range(0, len(parts), 2):
        ms, _, seq = parts[index].partition("-")
        messages.append(Message(HistoryId(int(ms), int(seq)), parts[index + 1], name, data, given))
    return messages


class Feeds:
    """The followers of one history: each a queue fed by a subscription task."""

    def __init__(self, client: Redis, channel: str, where: str, liveness_seconds: float) -> None:
        self._client = client
        self._channel = channel
        self._where = where
        self._liveness = liveness_seconds
        self._tasks: dict[asyncio.Task[None], asyncio.Queue[Item]] = {}
        self._closed = False

    async def follow(self) -> AsyncIterator[Message | Interrupted]:
        if self._closed:
            return
        queue: asyncio.Queue[Item] = asyncio.Queue()
        task = asyncio.create_task(self._subscribe(queue), name="notifications-feed")
        self._tasks[task] = queue
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            if self._tasks.pop(task, None) is not None:
                await stop_task(task)

    async def close(self) -> None:
        """Ends every follower: its task stops, its iterator returns."""
        self._closed = True
        tasks, self._tasks = self._tasks, {}
        for queue in tasks.values():
            queue.put_nowait(None)
        for task in tasks:
            await stop_task(task)

    async def _subscribe(self, queue: asyncio.Queue[Item]) -> None:
        failures, cut = 0, False
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    subscribed = False
                    async for kind, data in self._replies(pubsub):
                        if kind == "message":
                            for message in decode(data):
                                queue.put_nowait(message)
                        elif kind == "subscribe":
                            if cut or subscribed:
                                queue.put_nowait(Interrupted())
                            failures, cut, subscribed = 0, False, True
            except (RedisError, OSError) as exc:
                failures, cut = failures + 1, True
                delay = BACKOFF.delay(failures)
                log.warning(
                    "the notifications feed from Redis at %s broke (%s); subscribing again "
                    "in %.1f s",
                    self._where,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _replies(self, pubsub: PubSub) -> AsyncIterator[tuple[str, Any]]:
        """What the subscription reads (type, data), until it breaks or goes silent."""
        pinged = False
        while True:
            reply = await pubsub.get_message(timeout=self._liveness)
            if reply is not None:
                pinged = False
                yield reply["type"], reply["data"]
            elif pinged:
                raise RedisConnectionError(f"no answer within {2 * self._liveness:g} s")
            else:
                await pubsub.ping()
                pinged = True
