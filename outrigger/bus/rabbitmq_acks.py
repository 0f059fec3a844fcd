"""Acknowledgements of one subscription, coalesced: one `basic.ack multiple` per loop turn.

Every message a subscription settles is reported here by its delivery tag: `finished` when its
handler answered `Ack` (the ack is still to send), `settled` when it was acked or nacked on its
own (a copy forwarded to a delay or dead-letter queue). Once per turn of the event loop the
longest run of reported tags that follows the last acknowledged one is acknowledged with one
`ack(multiple=True)` on its highest finished message. A tag whose handler is still running ends
the run, so no message is acknowledged before its handler returned; finished tags above it wait
for the next turn that closes the gap. Acks go out one at a time, in order of their tags (a
`multiple` ack of a lower tag after a higher one would name a tag the broker no longer knows,
and close the channel).

Delivery tags number the deliveries of one channel from 1. After the channel was opened again
(a reconnection) the numbering starts afresh: what was waiting for the old channel is dropped,
and the broker delivers those messages again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aio_pika.exceptions import CONNECTION_EXCEPTIONS

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from aio_pika.abc import AbstractIncomingMessage

FAILURES = (*CONNECTION_EXCEPTIONS, TimeoutError)
log = logging.getLogger("outrigger.bus")


class Acknowledgements:
    """Coalesces the acks of one subscription's deliveries (see the module's docstring)."""

    def __init__(self) -> None:
        self._channel: object | None = None
        self._acked = 0  # every tag up to this one is acknowledged or settled
        self._reported: dict[int, AbstractIncomingMessage | None] = {}  # above `_acked`
        self._flush_scheduled = False
        self._next: AbstractIncomingMessage | None = None  # the next `multiple` ack to send
        self._sender: asyncio.Task[None] | None = None

    def finished(self, message: AbstractIncomingMessage) -> None:
        """The handler of `message` answered `Ack`: acknowledge it with its neighbours."""
        self._report(message, message)

    def settled(self, message: AbstractIncomingMessage) -> None:
        """`message` was acked or nacked on its own; a `multiple` ack may now pass it."""
        self._report(message, None)

    async def flush(self) -> None:
        """Sends what can be acknowledged now and waits until it was sent."""
        self._flush()
        while self._sender is not None and not self._sender.done():
            await asyncio.wait([self._sender])

    def _report(
        self, message: AbstractIncomingMessage, ack: AbstractIncomingMessage | None
    ) -> None:
        try:
            channel = message.channel
        except FAILURES:
            return  # the channel closed: the broker delivers the message again
        if channel is not self._channel:
            self._channel, self._acked, self._reported, self._next = channel, 0, {}, None
        tag = message.delivery_tag
        if tag is None or tag <= self._acked:
            return
        self._reported[tag] = ack
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        tag, last = self._acked + 1, None
        reported = self._reported
        while tag in reported:
            last = reported.pop(tag) or last
            tag += 1
        self._acked = tag - 1
        if last is None:
            return
        self._next = last
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="bus acks")

    async def _send(self) -> None:
        while (message := self._next) is not None:
            self._next = None
            await settle(message.ack(multiple=True), message)


async def settle(settling: Awaitable[None], message: AbstractIncomingMessage) -> None:
    """Awaits an ack or nack; a connection gone meanwhile is logged (the broker delivers the
    message again)."""
    try:
        await settling
    except FAILURES as exc:
        log.info(
            "message %s not settled (%r); the broker will deliver it again", message.message_id, exc
        )
