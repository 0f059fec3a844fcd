"""Coalesced acks: one `multiple` ack per loop turn, never past a message still being handled."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from aio_pika.exceptions import ChannelInvalidStateError

from outrigger.bus.rabbitmq_acks import Acknowledgements

if TYPE_CHECKING:
    from aio_pika.abc import AbstractIncomingMessage


class Channel:
    def __init__(self) -> None:
        self.acks: list[tuple[int, bool]] = []
        self.closed = False


class Message:
    """The part of an aio-pika message the acknowledgements use."""

    def __init__(self, channel: Channel, tag: int) -> None:
        self._channel, self.delivery_tag, self.message_id = channel, tag, f"m-{tag}"

    @property
    def channel(self) -> Channel:
        if self._channel.closed:
            raise ChannelInvalidStateError("closed")
        return self._channel

    async def ack(self, multiple: bool = False) -> None:
        self.channel.acks.append((self.delivery_tag, multiple))


def messages(channel: Channel, count: int) -> list[AbstractIncomingMessage]:
    return [cast("Any", Message(channel, tag)) for tag in range(1, count + 1)]


async def test_the_messages_finished_in_one_turn_are_acked_at_once() -> None:
    channel, acks = Channel(), Acknowledgements()
    for message in messages(channel, 500):
        acks.finished(message)
    await acks.flush()
    assert channel.acks == [(500, True)]


async def test_no_ack_passes_a_message_whose_handler_still_runs() -> None:
    channel, acks = Channel(), Acknowledgements()
    one, two, three, four = messages(channel, 4)
    acks.finished(one)
    acks.finished(three)
    acks.finished(four)
    await acks.flush()
    assert channel.acks == [(1, True)]
    acks.finished(two)
    await acks.flush()
    assert channel.acks == [(1, True), (4, True)]


async def test_a_message_settled_on_its_own_is_passed_but_never_acked_again() -> None:
    channel, acks = Channel(), Acknowledgements()
    one, two, three = messages(channel, 3)
    acks.finished(one)
    acks.settled(two)  # e.g. forwarded to a delay queue, then acked by itself
    await acks.flush()
    assert channel.acks == [(1, True)]
    acks.finished(three)
    await acks.flush()
    assert channel.acks == [(1, True), (3, True)]
    acks.settled(cast("Any", Message(channel, 4)))
    await acks.flush()
    assert channel.acks == [(1, True), (3, True)], "a tag settled on its own was acked again"


async def test_acks_wait_for_the_end_of_the_loop_turn() -> None:
    channel, acks = Channel(), Acknowledgements()
    for message in messages(channel, 3):
        acks.finished(message)
    assert channel.acks == []
    for _ in range(3):
        await asyncio.sleep(0)
    assert channel.acks == [(3, True)]


async def test_a_new_channel_numbers_its_deliveries_afresh() -> None:
    old, new, acks = Channel(), Channel(), Acknowledgements()
    first, second = messages(old, 2)
    acks.finished(second)  # the first is still handled when the connection drops
    await acks.flush()
    old.closed = True
    acks.finished(first)  # too late: the broker delivers both again
    again = messages(new, 2)
    acks.finished(again[0])
    acks.finished(again[1])
    await acks.flush()
    assert old.acks == []
    assert new.acks == [(2, True)]
