"""Contract: the global log, waiting for it, checkpoints and the metric inputs."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from services.event_store.domain import EventData
from tests.event_store.suite import SuiteBase, batch, new_category, new_stream

if TYPE_CHECKING:
    from services.event_store.domain import EventStore


class LogSuite(SuiteBase):
    async def test_the_log_is_contiguous_and_holds_every_event_once_in_stream_order(
        self, store: EventStore
    ) -> None:
        await self.settle(store)
        start = await store.head_position()
        category = new_category()
        streams = [new_stream(category) for _ in range(3)]
        for round_ in range(3):
            for stream in streams:
                await store.append(stream, batch(round_ + 1))
        await self.settle(store)
        log = await store.read_log(start, 10_000)
        positions = [event.global_position for event in log]
        assert positions == list(range(start + 1, start + 1 + len(log)))
        ours = [event for event in log if event.stream_id in streams]
        assert len(ours) == 3 * (1 + 2 + 3)
        assert len({event.id for event in ours}) == len(ours)
        for stream in streams:
            assert [e.version for e in ours if e.stream_id == stream] == list(range(6))
        assert await store.head_position() >= start + len(ours)

    async def test_stream_reads_carry_the_global_position_once_sequenced(
        self, store: EventStore
    ) -> None:
        stream = new_stream()
        await store.append(stream, batch(2))
        await self.settle(store)
        page = await store.read_stream(stream)
        log = {event.id: event.global_position for event in await self.log_of(store, stream)}
        assert [event.global_position for event in page.events] == [
            log[event.id] for event in page.events
        ]

    async def test_category_and_type_filters(self, store: EventStore) -> None:
        category = new_category()
        first, second = new_stream(category), new_stream(category)
        await store.append(first, [EventData("Opened", {}), EventData("Closed", {})])
        await store.append(new_stream(), [EventData("Opened", {})])
        await store.append(second, [EventData("Opened", {})])
        await self.settle(store)
        in_category = await store.read_log(0, 10_000, category=category)
        assert [(e.stream_id, e.type) for e in in_category] == [
            (first, "Opened"),
            (first, "Closed"),
            (second, "Opened"),
        ]
        positions = [e.global_position or 0 for e in in_category]
        assert positions == sorted(positions)
        opened = await store.read_log(0, 10_000, category=category, event_type="Opened")
        assert [e.stream_id for e in opened] == [first, second]
        typed = await store.read_log(positions[0] - 1, 10_000, event_type="Closed")
        assert first in [e.stream_id for e in typed]

    async def test_reads_past_the_head(self, store: EventStore) -> None:
        await store.append(new_stream(), batch(3))
        await self.settle(store)
        head = await store.head_position()
        assert len(await store.read_log(head - 3, 2)) == 2
        assert await store.read_log(head) == []

    async def test_deleted_streams_stay_in_the_log(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, batch(2))
        await store.delete(stream, hard=True)
        await self.settle(store)
        assert len(await self.log_of(store, stream)) == 2

    async def test_wait_for_log_returns_at_once_times_out_or_wakes_up(
        self, store: EventStore
    ) -> None:
        await store.append(new_stream(), batch(1))
        await self.settle(store)
        head = await store.head_position()
        assert await store.wait_for_log(head - 1, max_wait=5) >= head
        assert await store.wait_for_log(head, max_wait=0.2) == head

        async def write_later() -> None:
            await asyncio.sleep(0.3)
            await store.append(new_stream(), batch(1))
            await self.settle(store)

        writer = asyncio.create_task(write_later())
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await store.wait_for_log(head, max_wait=10) > head
        assert loop.time() - started < 5
        await writer

    async def test_checkpoints_are_stored_by_name(self, store: EventStore) -> None:
        name = f"relay:{new_category()}"
        assert await store.get_checkpoint(name) == 0
        await store.set_checkpoint(name, 42)
        await store.set_checkpoint(name, 43)
        assert await store.get_checkpoint(name) == 43

    async def test_the_trace_context_of_an_append_is_kept_with_each_event(
        self, store: EventStore
    ) -> None:
        traced, untraced = new_stream(), new_stream()
        trace = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
        await store.append(traced, batch(2), trace=trace)
        await store.append(untraced, batch(1))
        await self.settle(store)
        assert [e.trace for e in (await store.read_stream(traced)).events] == [trace, trace]
        assert [e.trace for e in await self.log_of(store, traced)] == [trace, trace]
        assert [e.trace for e in await self.log_of(store, untraced)] == [None]
        other = {"traceparent": "00-11111111111111111111111111111111-2222222222222222-01"}
        retried = [
            EventData(e.type, e.data, e.metadata, e.id)
            for e in (await store.read_stream(traced)).events
        ]
        assert (await store.append(traced, retried, trace=other)).replayed  # not content

    async def log_of(self, store: EventStore, stream: str) -> list:  # type: ignore[type-arg]
        category = stream.split("-", 1)[0]
        return [
            e for e in await store.read_log(0, 10_000, category=category) if e.stream_id == stream
        ]
