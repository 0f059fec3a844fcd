"""Conformance under concurrency (issue 3), on PostgreSQL with the sequencer running.

32 writers append to 8 hot streams for OUTRIGGER_TEST_CONFORMANCE_SECONDS (default 10, at most
60). Each append runs in an explicit transaction that sleeps 0-4 ms before COMMIT, so the
stream's lock and the transaction's xid stay held like in a slow application. Writers mostly
append at the exact version they just read (stale reads make conflicts), sometimes with `any`,
and sometimes retry a batch that already went through. A follower reads the global log
meanwhile. Checked: no lost event, no duplicate version, a contiguous log from the test's first
position, per-stream order in it, the follower saw each event once, every conflict's actual
version was right.
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from outrigger.errors import Conflict, NotFound
from services.event_store.adapters.postgres import PostgresEventStore
from services.event_store.domain import (
    ANY,
    NO_STREAM,
    AppendResult,
    ExpectedVersion,
    RecordedEvent,
)
from services.event_store.domain.errors import wire
from tests.event_store.conftest import sequencer_for, settle
from tests.event_store.suite import batch, new_category

DURATION = min(60.0, max(1.0, float(os.environ.get("OUTRIGGER_TEST_CONFORMANCE_SECONDS", "10"))))
WRITERS, STREAMS, MAX_DELAY = 32, 8, 0.004


class SlowCommitStore(PostgresEventStore):
    """The real adapter, with a random delay between the append function and COMMIT."""

    async def _call_append(
        self, connection: psycopg.AsyncConnection[Any], params: tuple[str, int | None, str]
    ) -> tuple[int, int, bool]:
        async with connection.transaction():
            row = await super()._call_append(connection, params)
            await connection.execute("SELECT pg_sleep(%s)", (random.uniform(0, MAX_DELAY),))
        return row


@dataclass
class Record:
    """What the writers saw, with monotonic start/end times of each call."""

    done: list[tuple[float, float, AppendResult, list[Any]]] = field(default_factory=list)
    conflicts: list[tuple[float, float, str, ExpectedVersion, int | None]] = field(
        default_factory=list
    )
    replays: int = 0


async def writer(store: PostgresEventStore, streams: list[str], record: Record, end: float) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < end:
        stream = random.choice(streams)
        events = batch(random.randint(1, 3))
        expected = await read_expectation(store, stream) if random.random() < 0.75 else ANY
        started = loop.time()
        conflict: Conflict | None = None
        try:
            result = await store.append(stream, events, expected)
        except Conflict as caught:
            conflict = caught
        if conflict is not None:
            extensions = conflict.extensions
            assert extensions["stream_id"] == stream
            assert extensions["expected_version"] == wire(expected)
            assert f'but stream "{stream}" is at {extensions["actual_version"]};' in conflict.detail
            actual = extensions["actual_version"]
            record.conflicts.append((started, loop.time(), stream, expected, actual))
            continue
        record.done.append((started, loop.time(), result, [e.id for e in events]))
        if random.random() < 0.1:
            again = await store.append(stream, events, expected)
            assert again == AppendResult(stream, result.first_version, result.last_version, True)
            record.replays += 1


async def read_expectation(store: PostgresEventStore, stream: str) -> ExpectedVersion:
    try:
        version = (await store.stream_info(stream)).version
    except NotFound:
        return NO_STREAM
    return NO_STREAM if version is None else version


async def read_all(store: PostgresEventStore, stream: str) -> list[RecordedEvent]:
    page = await store.read_stream(stream, limit=1000)
    events = page.events
    while page.next_version is not None:
        page = await store.read_stream(stream, from_version=page.next_version, limit=1000)
        events += page.events
    return events


async def follow(
    store: PostgresEventStore, after: int, seen: list[RecordedEvent], stop: Any
) -> None:
    while not stop.is_set():
        if await store.wait_for_log(after, max_wait=0.5) > after:
            events = await store.read_log(after, 1000)
            seen.extend(events)
            if events:
                after = events[-1].global_position or after


@pytest.mark.postgres
@pytest.mark.timeout(DURATION + 120)
async def test_concurrent_writers_on_hot_streams(event_store_postgres_url: str) -> None:
    store = await SlowCommitStore.open(event_store_postgres_url, min_size=8, max_size=40)
    sequencer = sequencer_for(event_store_postgres_url, store)
    streams = [f"{new_category()}-{n}" for n in range(STREAMS)]
    record, seen, stop = Record(), list[RecordedEvent](), asyncio.Event()
    try:
        await settle(store)
        start = await store.head_position()
        sequencer.start()
        follower = asyncio.create_task(follow(store, start, seen, stop))
        end = asyncio.get_running_loop().time() + DURATION
        async with asyncio.TaskGroup() as writers:
            for _ in range(WRITERS):
                writers.create_task(writer(store, streams, record, end))
        assert sequencer.leading
        total = sum(r.last_version - r.first_version + 1 for _, _, r, _ in record.done)
        await settle(store, max_wait=30)
        head = await store.head_position()
        async with asyncio.timeout(30):
            while ((seen[-1].global_position or 0) if seen else start) < head:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        stop.set()
        await follower
        log = await store.read_log(start, 10_000)
        while len(log) < total and log:
            log += await store.read_log(log[-1].global_position or 0, 10_000)
        contents = {stream: await read_all(store, stream) for stream in streams}
    finally:
        stop.set()
        await sequencer.stop()
        await store.close()

    assert len(record.done) > 100
    assert len(record.conflicts) > 10, "the streams were contended"
    assert record.replays > 0
    check_streams(record, contents)
    check_log(start, total, log, contents)
    assert [e.global_position for e in seen] == [e.global_position for e in log]
    assert [e.id for e in seen] == [e.id for e in log]
    check_conflicts(record)


def check_streams(record: Record, contents: dict[str, list[RecordedEvent]]) -> None:
    """Every acknowledged event is where its append said, and nothing else was written."""
    for events in contents.values():
        assert [e.version for e in events] == list(range(len(events))), "no hole, no duplicate"
    by_position = {(e.stream_id, e.version): e.id for es in contents.values() for e in es}
    written = 0
    for _, _, result, ids in record.done:
        versions = range(result.first_version, result.last_version + 1)
        assert [by_position[(result.stream_id, v)] for v in versions] == ids
        written += len(ids)
    assert written == len(by_position), "only acknowledged appends left events"


def check_log(
    start: int, total: int, log: list[RecordedEvent], contents: dict[str, list[RecordedEvent]]
) -> None:
    assert [e.global_position for e in log] == list(range(start + 1, start + total + 1))
    assert len({e.id for e in log}) == total
    for stream, events in contents.items():
        assert [e.version for e in log if e.stream_id == stream] == [e.version for e in events]


def check_conflicts(record: Record) -> None:
    """A conflict's actual version a was committed before the call ended, and a + 1 was not
    committed before the call began (its append had not returned yet)."""
    made: dict[tuple[str, int], tuple[float, float]] = {}
    for started, ended, result, _ in record.done:
        for version in range(result.first_version, result.last_version + 1):
            made[(result.stream_id, version)] = (started, ended)
    for started, ended, stream, expected, actual in record.conflicts:
        assert actual is not None
        assert actual != expected
        assert made[(stream, actual)][0] < ended
        if (stream, actual + 1) in made:
            assert made[(stream, actual + 1)][1] > started
