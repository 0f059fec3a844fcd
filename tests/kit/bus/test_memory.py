"""The bus contract on the in-memory adapter, plus what only it promises."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from outrigger.bus import MessageBus
from outrigger.bus.memory import MemoryBus, topic_matches
from tests.kit.bus.contract import BusContract, Inbox, Names, event


class TestMemoryBus(BusContract):
    system = "memory"

    @pytest.fixture
    def bus_url(self) -> str:
        return f"memory://test-{uuid.uuid4().hex[:12]}"

    def make_bus(self, url: str, **options: Any) -> MessageBus:
        return MemoryBus(url, source="tests/bus", **options)

    async def test_buses_on_one_url_share_a_broker(self, new_bus: Any, names: Names) -> None:
        exchange, queue = names.exchange(), names.queue()
        inbox = Inbox()
        await (await new_bus()).subscribe(queue, [(exchange, "#")], inbox)
        await (await new_bus()).publish(exchange, "k", sent := event())
        [delivery] = await inbox.wait(1)
        assert delivery.event.id == sent.id

    async def test_prefetch_bounds_the_handlers_running_at_once(
        self, bus: MessageBus, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        running, peak = 0, 0

        async def handler(delivery: Any) -> Any:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await inbox(delivery)
            running -= 1
            return inbox.outcome

        inbox = Inbox(pause=0.02)
        await bus.subscribe(queue, [(exchange, "#")], handler, prefetch=3)
        await bus.publish_many(exchange, [("k", event()) for _ in range(12)])
        await inbox.wait(12)
        assert peak == 3


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.*", "a", False),
        ("a.#", "a", True),
        ("a.#", "a.b.c", True),
        ("#", "anything.at.all", True),
        ("#.z", "a.b.z", True),
        ("a.#.z", "a.z", True),
        ("a.#.z", "a.b.c.z", True),
        ("a.#.z", "a.b.c", False),
        ("*.b.*", "a.b.c", True),
        ("a.b", "a.b", True),
        ("a.b", "a.bb", False),
    ],
)
def test_topic_matching_follows_amqp(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches
