"""Contract: appends, expected versions, idempotent retries and bad input."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest

from outrigger.errors import Conflict, InvalidInput, NotFound
from services.event_store.domain import (
    ANY,
    MAX_EVENTS_PER_APPEND,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    EventData,
)
from tests.event_store.suite import SuiteBase, batch, new_stream, same_content

if TYPE_CHECKING:
    from services.event_store.domain import EventStore


class AppendSuite(SuiteBase):
    async def test_append_creates_the_stream_and_reads_back_what_was_sent(
        self, store: EventStore
    ) -> None:
        stream = new_stream()
        sent = [
            EventData("Opened", {"total": 1.5, "items": [1, "two"]}, {"subject": "u-1"}),
            EventData("Paid", {"ok": True}, {"sensitive": ["card"]}, schema_version=3),
        ]
        result = await store.append(stream, sent, NO_STREAM)
        assert result == AppendResult(stream, 0, 1, replayed=False)
        page = await store.read_stream(stream)
        assert [event.version for event in page.events] == [0, 1]
        assert all(same_content(got, want) for got, want in zip(page.events, sent, strict=True))
        assert all(event.stream_id == stream for event in page.events)

    async def test_each_expected_version_form(self, store: EventStore) -> None:
        stream = new_stream()
        assert (await store.append(stream, batch(2), NO_STREAM)).last_version == 1
        assert (await store.append(stream, batch(1), 1)).last_version == 2
        assert (await store.append(stream, batch(1), STREAM_EXISTS)).last_version == 3
        assert (await store.append(stream, batch(1), ANY)).last_version == 4
        assert (await store.append(new_stream(), batch(1), ANY)).first_version == 0

    async def test_concurrent_appends_to_one_stream_all_land_in_order(
        self, store: EventStore
    ) -> None:
        stream = new_stream()
        results = await asyncio.gather(*(store.append(stream, batch(2)) for _ in range(10)))
        assert sorted(r.first_version for r in results) == list(range(0, 20, 2))
        assert await self.versions(store, stream) == list(range(20))

    async def test_a_stale_exact_version_is_a_conflict_with_the_actual_one(
        self, store: EventStore
    ) -> None:
        stream = new_stream()
        await store.append(stream, batch(7))
        with pytest.raises(Conflict) as caught:
            await store.append(stream, batch(1), 4)
        error = caught.value
        assert error.detail.startswith(f'expected_version 4 but stream "{stream}" is at 6')
        assert error.extensions == {
            "stream_id": stream,
            "expected_version": 4,
            "actual_version": 6,
        }
        assert error.problem()["status"] == 409
        assert await self.versions(store, stream) == list(range(7))

    @pytest.mark.parametrize(
        ("expected", "exists", "actual"),
        [(NO_STREAM, True, 0), (STREAM_EXISTS, False, None), (3, False, None)],
    )
    async def test_other_expectations_that_do_not_hold(
        self, store: EventStore, expected: object, exists: bool, actual: int | None
    ) -> None:
        stream = new_stream()
        if exists:
            await store.append(stream, batch(1))
        with pytest.raises(Conflict) as caught:
            await store.append(stream, batch(1), expected)  # type: ignore[arg-type]
        assert caught.value.extensions["actual_version"] == actual
        assert caught.value.extensions["expected_version"] == expected
        assert f'stream "{stream}"' in caught.value.detail

    async def test_a_retry_returns_the_first_result_and_writes_nothing(
        self, store: EventStore
    ) -> None:
        stream = new_stream()
        await store.append(stream, batch(2))
        sent = batch(3)
        first = await store.append(stream, sent, 1)
        await store.append(stream, batch(1))  # someone else appends meanwhile
        again = await store.append(stream, sent, 1)
        assert again == AppendResult(stream, 2, 4, replayed=True)
        assert first == AppendResult(stream, 2, 4, replayed=False)
        assert await self.versions(store, stream) == [0, 1, 2, 3, 4, 5]

    @pytest.mark.parametrize("change", ["data", "metadata", "type", "schema_version"])
    async def test_same_ids_with_other_content_are_a_conflict_naming_the_id(
        self, store: EventStore, change: str
    ) -> None:
        stream = new_stream()
        sent = batch(2)
        await store.append(stream, sent)
        original = sent[1]
        changed = {
            "data": EventData(original.type, {"other": 1}, id=original.id),
            "metadata": EventData(original.type, original.data, {"x": 1}, id=original.id),
            "type": EventData("Other", original.data, id=original.id),
            "schema_version": EventData(
                original.type, original.data, id=original.id, schema_version=2
            ),
        }[change]
        with pytest.raises(Conflict) as caught:
            await store.append(stream, [sent[0], changed])
        assert str(original.id) in caught.value.detail
        assert caught.value.extensions["event_id"] == str(original.id)
        assert await self.versions(store, stream) == [0, 1]

    async def test_a_batch_mixing_stored_and_new_ids_is_a_conflict(self, store: EventStore) -> None:
        stream = new_stream()
        sent = batch(1)
        await store.append(stream, sent)
        with pytest.raises(Conflict, match=str(sent[0].id)):
            await store.append(stream, [*sent, *batch(1)])
        assert await self.versions(store, stream) == [0]

    async def test_an_event_id_used_by_another_stream_is_a_conflict(
        self, store: EventStore
    ) -> None:
        sent = batch(1)
        owner = new_stream()
        await store.append(owner, sent)
        other = new_stream()
        with pytest.raises(Conflict) as caught:
            await store.append(other, [*batch(2), *sent])
        assert caught.value.extensions["stream_id"] == owner
        with pytest.raises(NotFound, match="does not exist"):
            await store.read_stream(other)

    async def test_json_equal_content_is_the_same_content(self, store: EventStore) -> None:
        stream = new_stream()
        event_id = uuid.uuid4()
        await store.append(stream, [EventData("T", {"a": 1, "b": [1, 2]}, id=event_id)])
        retry = EventData("T", {"b": [1, 2], "a": 1}, id=event_id)
        assert (await store.append(stream, [retry])).replayed

    async def test_a_full_batch_is_accepted(self, store: EventStore) -> None:
        stream = new_stream()
        result = await store.append(stream, batch(MAX_EVENTS_PER_APPEND))
        assert result.last_version == MAX_EVENTS_PER_APPEND - 1

    @pytest.mark.parametrize(
        "bad",
        [
            [EventData("T", {"when": object()})],
            [EventData("T", {"text": "nul \x00 inside"})],
        ],
    )
    async def test_data_the_store_cannot_keep_refuses_the_whole_batch(
        self, store: EventStore, bad: list[EventData]
    ) -> None:
        stream = new_stream()
        await store.append(stream, batch(1))
        with pytest.raises(InvalidInput):
            await store.append(stream, [*batch(2), *bad, *batch(1)])
        assert await self.versions(store, stream) == [0]

    async def test_the_widest_stream_ids_are_accepted(self, store: EventStore) -> None:
        stream = "Az09_.:-" + uuid.uuid4().hex + "x" * (200 - 8 - 32)
        assert len(stream) == 200
        assert (await store.append(stream, batch(1))).first_version == 0
