"""Publishing with publisher confirms, through aiormq's public `basic_publish` only.

Every publish goes out on the bus's one confirming channel, so the messages of a batch reach a
queue in the order given. `publish_all` keeps up to `in_flight` of them awaiting their confirm
at once: each `basic_publish` hands its frames to the connection's writer without waiting for
the socket to drain (`wait=False`) and returns on the broker's ack, so the confirms pace the
batch, not the writes. A nack, a missing exchange, or a broker that confirms nothing for
`timeout` seconds on a live channel fails the call (one watchdog per batch, not a timer per
message). A lost connection does not: once aio-pika has reconnected (within `timeout`
seconds), whatever was not confirmed is published again, so a message may arrive twice (at
least once).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aio_pika.exceptions import (
    CONNECTION_EXCEPTIONS,
    ChannelClosed,
    ChannelNotFoundEntity,
    DeliveryError,
)
from aiormq import Channel

from outrigger.errors import MessagingError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aio_pika.abc import AbstractRobustChannel
    from aiormq import spec


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message, encoded once and sent as often as a reconnection makes necessary."""

    routing_key: str
    body: bytes
    properties: spec.Basic.Properties


class _Lost(Exception):
    """A publish the connection's loss interrupted (or prevented): to be sent again."""


class ConfirmingPublisher:
    """Publishes on one confirming robust channel and waits for the broker's confirms."""

    def __init__(
        self,
        channel: AbstractRobustChannel,
        connected: asyncio.Event,
        *,
        where: str,
        timeout: float,
        in_flight: int,
    ) -> None:
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, not {in_flight}")
        self.channel = channel
        self.connected = connected
        self.where = where
        self.timeout = timeout
        self.in_flight = in_flight

    async def publish(self, exchange: str, message: Outgoing) -> None:
        """Publishes one message and waits for its confirm, riding out a reconnection."""
        deadline: float | None = None
        while True:
            try:
                channel = await self._live_channel(deadline)
                await self._send(channel, exchange, message, within=self.timeout)
                return
            except _Lost as lost:
                deadline = await self._reconnected(deadline, lost)

    async def publish_all(self, exchange: str, messages: Sequence[Outgoing]) -> None:
        """Publishes `messages` in order, `in_flight` awaiting their confirm at any time."""
        pending = list(messages)
        deadline: float | None = None
        while pending:
            try:
                channel = await self._live_channel(deadline)
            except _Lost as lost:
                deadline = await self._reconnected(deadline, lost)
                continue
            failures = await self._round(channel, exchange, pending)
            pending = [m for m, failure in zip(pending, failures, strict=True) if failure]
            first = next((failure for failure in failures if failure is not None), None)
            if first is not None:
                deadline = await self._reconnected(deadline, first)

    async def _round(
        self, channel: Channel, exchange: str, messages: Sequence[Outgoing]
    ) -> list[_Lost | None]:
        """Sends `messages` on `channel` until each is confirmed or the channel is lost.

        Returns, for each message, None once confirmed or why it must be sent again. Raises
        MessagingError as soon as the broker refuses one (the others' fate is then unknown).
        """
        unsent = _Lost("not sent: the channel was lost first")
        failures: list[_Lost | None] = [unsent] * len(messages)
        numbers = iter(range(len(messages)))
        lost = False
        confirmed = 0

        async def sender() -> None:
            nonlocal lost, confirmed
            for number in numbers:
                if lost:
                    return
                try:
                    await self._send(channel, exchange, messages[number], within=None)
                except _Lost as exc:
                    failures[number], lost = exc, True
                    return
                failures[number] = None
                confirmed += 1

        senders = [asyncio.create_task(sender()) for _ in range(min(self.in_flight, len(messages)))]
        over = asyncio.get_running_loop().create_future()  # all senders done, or one failed
        remaining = len(senders)

        def on_done(task: asyncio.Task[None]) -> None:
            nonlocal remaining
            remaining -= 1
            failed = not task.cancelled() and task.exception() is not None
            if (failed or not remaining) and not over.done():
                over.set_result(None)

        for task in senders:
            task.add_done_callback(on_done)
        closing = channel.closing
        try:
            seen = -1
            while not over.done() and not closing.done():
                if seen == confirmed:
                    raise MessagingError(f"{self.where} confirmed nothing for {self.timeout}s")
                seen = confirmed
                await asyncio.wait(
                    {over, closing}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            closing.cancel()
            over.cancel()
            for task in senders:
                task.cancel()
            outcomes = await asyncio.gather(*senders, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome
        return failures

    async def _send(
        self, channel: Channel, exchange: str, message: Outgoing, *, within: float | None
    ) -> None:
        """One `basic_publish`, awaited until its confirm (at most `within` seconds, None: no
        limit); a lost channel raises `_Lost`."""
        try:
            await channel.basic_publish(
                message.body,
                exchange=exchange,
                routing_key=message.routing_key,
                properties=message.properties,
                timeout=within,
                wait=False,
            )
        except DeliveryError as exc:
            raise MessagingError(f"{self.where} refused a message for {exchange!r}") from exc
        except ChannelNotFoundEntity as exc:
            raise MessagingError(f"exchange {exchange!r} does not exist") from exc
        except ChannelClosed as exc:
            raise MessagingError(f"{self.where} refused a publish to {exchange!r}: {exc}") from exc
        except TimeoutError as exc:
            if channel.is_closed:
                raise _Lost(f"channel lost before the confirm ({exc!r})") from exc
            raise MessagingError(f"{self.where} did not confirm within {self.timeout}s") from exc
        except CONNECTION_EXCEPTIONS as exc:
            raise _Lost(repr(exc)) from exc

    async def _live_channel(self, deadline: float | None) -> Channel:
        """The robust channel's current aiormq channel, waiting (bounded) for a reconnection."""
        try:
            if self.connected.is_set():
                channel = await self.channel.get_underlay_channel()
            else:
                loop = asyncio.get_running_loop()
                remaining = self.timeout if deadline is None else deadline - loop.time()
                async with asyncio.timeout(max(remaining, 0)):
                    channel = await self.channel.get_underlay_channel()
        except TimeoutError as exc:
            raise _Lost(f"not reconnected within {self.timeout}s") from exc
        except CONNECTION_EXCEPTIONS as exc:
            raise _Lost(repr(exc)) from exc
        if not isinstance(channel, Channel):  # aio-pika's channels are aiormq's, with `wait`
            raise TypeError(f"expected an aiormq Channel, not {type(channel).__name__}")
        if channel.is_closed:
            raise _Lost("channel closed")
        return channel

    async def _reconnected(self, deadline: float | None, lost: _Lost) -> float:
        """Waits for the robust channel to be restored; raises MessagingError after the
        deadline (`timeout` seconds after the first loss). Returns the deadline."""
        loop = asyncio.get_running_loop()
        deadline = deadline or loop.time() + self.timeout
        try:
            async with asyncio.timeout(max(deadline - loop.time(), 0)):
                await asyncio.sleep(0.05)
                await self.channel.ready()
        except TimeoutError:
            raise MessagingError(
                f"{self.where} unreachable for {self.timeout}s ({lost}); not published"
            ) from lost
        return deadline
