"""Contract: stream reads, retention metadata, deletes and snapshots."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from outrigger.errors import Conflict, Gone, NotFound
from services.event_store.domain import NO_STREAM, STREAM_EXISTS, StreamMetadata
from tests.event_store.suite import SuiteBase, batch, new_stream

if TYPE_CHECKING:
    from services.event_store.domain import EventStore


class ReadSuite(SuiteBase):
    async def test_forward_pages_follow_next_version(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, batch(5))
        first = await store.read_stream(stream, limit=2)
        assert [e.version for e in first.events] == [0, 1]
        assert first.next_version == 2
        second = await store.read_stream(stream, from_version=2, limit=2)
        third = await store.read_stream(stream, from_version=4, limit=2)
        assert [e.version for e in second.events + third.events] == [2, 3, 4]
        assert third.next_version is None
        past = await store.read_stream(stream, from_version=9)
        assert (past.events, past.next_version) == ([], None)

    async def test_backward_reads_start_at_the_end_or_the_given_version(
        self, store: EventStore
    ) -> None:
        stream = new_stream()
        await store.append(stream, batch(5))
        last = await store.read_stream(stream, direction="backward", limit=2)
        assert [e.version for e in last.events] == [4, 3]
        assert last.next_version == 2
        rest = await store.read_stream(stream, direction="backward", from_version=2, limit=5)
        assert [e.version for e in rest.events] == [2, 1, 0]
        assert rest.next_version is None

    async def test_an_unknown_stream_is_not_found(self, store: EventStore) -> None:
        with pytest.raises(NotFound, match="does not exist"):
            await store.read_stream(new_stream())
        with pytest.raises(NotFound):
            await store.stream_info(new_stream())

    async def test_max_count_and_truncate_before_hide_older_events(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, batch(6))
        await store.set_metadata(stream, StreamMetadata(max_count=3))
        assert await self.versions(store, stream) == [3, 4, 5]
        backward = await store.read_stream(stream, direction="backward", limit=10)
        assert [e.version for e in backward.events] == [5, 4, 3]
        await store.set_metadata(stream, StreamMetadata(truncate_before=2, max_count=5))
        assert await self.versions(store, stream) == [2, 3, 4, 5]
        await store.set_metadata(stream, StreamMetadata())
        assert await self.versions(store, stream) == [0, 1, 2, 3, 4, 5]

    async def test_max_age_hides_events_older_than_it(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, batch(2))
        await asyncio.sleep(1.2)
        await store.append(stream, batch(1))
        await store.set_metadata(stream, StreamMetadata(max_age=1))
        assert await self.versions(store, stream) == [2]

    async def test_metadata_round_trips_and_may_precede_events(self, store: EventStore) -> None:
        stream = new_stream()
        metadata = StreamMetadata(max_age=60, max_count=10, truncate_before=0, custom={"k": [1]})
        info = await store.set_metadata(stream, metadata)
        assert (info.version, info.metadata, info.deleted) == (None, metadata, False)
        assert (await store.read_stream(stream)).events == []
        await store.append(stream, batch(1), NO_STREAM)
        info = await store.stream_info(stream)
        assert (info.version, info.metadata) == (0, metadata)
        assert info.created <= info.updated
        assert info.category == stream.split("-")[0]

    async def test_soft_delete_hides_everything_and_an_append_restarts_the_stream(
        self, store: EventStore
    ) -> None:
        stream = new_stream()
        await store.append(stream, batch(3))
        await store.save_snapshot(stream, 2, {"state": 1})
        await store.delete(stream)
        assert (await store.read_stream(stream)).events == []
        info = await store.stream_info(stream)
        assert (info.deleted, info.tombstoned, info.version) == (True, False, 2)
        assert await store.load_snapshot(stream) is None
        await store.delete(stream)  # again: nothing changes
        result = await store.append(stream, batch(2), NO_STREAM)
        assert (result.first_version, result.last_version) == (3, 4)
        assert await self.versions(store, stream) == [3, 4]
        assert not (await store.stream_info(stream)).deleted

    async def test_a_soft_deleted_stream_does_not_exist_for_expectations(
        self, store: EventStore
    ) -> None:
        stream = new_stream()
        await store.append(stream, batch(3))
        await store.delete(stream)
        for expected in (2, STREAM_EXISTS):
            with pytest.raises(Conflict, match="was deleted") as caught:
                await store.append(stream, batch(1), expected)
            assert caught.value.extensions["actual_version"] is None

    async def test_delete_checks_its_expected_version(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, batch(2))
        with pytest.raises(Conflict, match="is at 1"):
            await store.delete(stream, expected_version=0)
        await store.delete(stream, expected_version=1)
        with pytest.raises(NotFound):
            await store.delete(new_stream())

    async def test_a_tombstone_is_for_good(self, store: EventStore) -> None:
        stream = new_stream()
        await store.append(stream, batch(2))
        await store.delete(stream, hard=True)
        info = await store.stream_info(stream)
        assert (info.tombstoned, info.deleted) == (True, True)
        with pytest.raises(Gone, match="deleted for good") as caught:
            await store.append(stream, batch(1))
        assert caught.value.problem()["status"] == 410
        with pytest.raises(Gone):
            await store.read_stream(stream)
        with pytest.raises(Gone):
            await store.set_metadata(stream, StreamMetadata())
        with pytest.raises(Gone):
            await store.save_snapshot(stream, 0, {})
        with pytest.raises(Gone):
            await store.delete(stream)

    async def test_hard_deleting_an_unknown_stream_is_not_found_and_reserves_nothing(
        self, store: EventStore
    ) -> None:
        stream = new_stream()
        with pytest.raises(NotFound):
            await store.delete(stream, hard=True)
        assert (await store.append(stream, batch(1), NO_STREAM)).first_version == 0

    async def test_a_stream_tombstoned_before_its_first_event_never_gets_one(
        self, store: EventStore
    ) -> None:
        stream = new_stream()
        await store.set_metadata(stream, StreamMetadata(max_count=5))
        await store.delete(stream, hard=True)
        with pytest.raises(Gone):
            await store.append(stream, batch(1), NO_STREAM)

    async def test_snapshots_round_trip_and_the_latest_is_kept(self, store: EventStore) -> None:
        stream = new_stream()
        assert await store.load_snapshot(stream) is None
        await store.append(stream, batch(4))
        await store.save_snapshot(stream, 1, {"total": 1})
        saved = await store.save_snapshot(stream, 3, {"total": 3, "items": ["a"]})
        loaded = await store.load_snapshot(stream)
        assert loaded is not None
        assert (loaded.version, loaded.state) == (3, {"total": 3, "items": ["a"]})
        assert loaded == saved

    async def test_a_snapshot_needs_an_existing_version(self, store: EventStore) -> None:
        stream = new_stream()
        with pytest.raises(NotFound):
            await store.save_snapshot(stream, 0, {})
        await store.append(stream, batch(2))
        with pytest.raises(Conflict, match="past the stream's last event"):
            await store.save_snapshot(stream, 2, {})
