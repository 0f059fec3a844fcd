"""PostgreSQL only: the sequencer's ordering guarantees, its election, and connection failures."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from outrigger.errors import Conflict, DatabaseError
from services.event_store.adapters import postgres_sql as sql
from services.event_store.adapters.codec import events_json
from services.event_store.adapters.postgres import PostgresEventStore
from services.event_store.adapters.postgres_connection import conninfo
from tests.event_store.conftest import SEQUENCER, sequencer_for, settle
from tests.event_store.suite import batch, new_stream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

pytestmark = pytest.mark.postgres


@pytest.fixture
async def store(event_store_postgres_url: str) -> AsyncIterator[PostgresEventStore]:
    store = await PostgresEventStore.open(event_store_postgres_url, max_size=4)
    await settle(store)
    yield store
    await store.close()


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def open_append(url: str, stream_id: str, events: Any) -> psycopg.AsyncConnection[Any]:
    """An append left uncommitted: its transaction (and xid) stays open until the caller ends it."""
    connection = await psycopg.AsyncConnection.connect(conninfo(url))
    await connection.execute(sql.APPEND, (stream_id, None, events_json(events)))
    return connection


async def test_an_open_transaction_holds_the_log_back_but_not_appends(
    store: PostgresEventStore, event_store_postgres_url: str
) -> None:
    head = await store.head_position()
    slow_stream, fast_stream = new_stream(), new_stream()
    slow = await open_append(event_store_postgres_url, slow_stream, batch(1))
    try:
        await store.append(fast_stream, batch(2))
        await asyncio.sleep(0.5)
        assert await store.sequence_batch() == 0, "no time-based gap skipping"
        assert (await store.sequencer_delay() or 0) >= 0.5
        assert (await store.oldest_transaction_age() or 0) >= 0.5
        await slow.commit()
    finally:
        await slow.close()
    await settle(store)
    log = await store.read_log(head, 100)
    assert [(e.stream_id, e.version) for e in log] == [
        (slow_stream, 0),
        (fast_stream, 0),
        (fast_stream, 1),
    ]


async def test_an_id_taken_meanwhile_by_another_stream_is_a_conflict(
    store: PostgresEventStore, event_store_postgres_url: str
) -> None:
    events = batch(1)
    owner = new_stream()
    slow = await open_append(event_store_postgres_url, owner, events)
    try:
        racing = asyncio.create_task(store.append(new_stream(), events))
        await asyncio.sleep(0.3)
        assert not racing.done(), "the second insert waits for the first transaction"
        await slow.commit()
    finally:
        await slow.close()
    with pytest.raises(Conflict) as caught:
        await racing
    assert caught.value.extensions["stream_id"] == owner


async def test_one_leader_among_replicas_and_another_takes_over(
    store: PostgresEventStore, event_store_postgres_url: str
) -> None:
    first = sequencer_for(event_store_postgres_url, store, election_interval=0.1)
    second = sequencer_for(event_store_postgres_url, store, election_interval=0.1)
    try:
        first.start()
        await eventually(lambda: first.leading)
        second.start()
        await asyncio.sleep(0.5)
        assert not second.leading
        head = await store.head_position()
        await store.append(new_stream(), batch(1))
        assert await store.wait_for_log(head, max_wait=5) == head + 1
        await first.stop()
        await eventually(lambda: second.leading)
        await store.append(new_stream(), batch(1))
        assert await store.wait_for_log(head + 1, max_wait=5) == head + 2
    finally:
        await first.stop()
        await second.stop()


async def test_a_leader_whose_connection_drops_leads_again_after_reconnecting(
    store: PostgresEventStore, event_store_postgres_url: str
) -> None:
    sequencer = sequencer_for(event_store_postgres_url, store, election_interval=0.1)
    sequencer.start()
    try:
        await eventually(lambda: sequencer.leading)
        async with await psycopg.AsyncConnection.connect(
            conninfo(event_store_postgres_url), autocommit=True
        ) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND datname = current_database()",
                (SEQUENCER,),
            )
        await eventually(lambda: not sequencer.leading, within=5)
        await eventually(lambda: sequencer.leading, within=10)
        head = await store.head_position()
        await store.append(new_stream(), batch(3))
        assert await store.wait_for_log(head + 2, max_wait=5) == head + 3
    finally:
        await sequencer.stop()


async def test_waiters_wake_on_the_sequencers_notification(
    store: PostgresEventStore, event_store_postgres_url: str
) -> None:
    sequencer = sequencer_for(event_store_postgres_url, store)
    sequencer.start()
    try:
        head = await store.head_position()
        await store.wait_for_log(head, max_wait=0.1)  # the listener is up
        await eventually(lambda: store._listener.connected)
        waiters = [asyncio.create_task(store.wait_for_log(head, max_wait=5)) for _ in range(50)]
        loop = asyncio.get_running_loop()
        started = loop.time()
        await store.append(new_stream(), batch(1))
        assert await asyncio.gather(*waiters) == [head + 1] * 50
        assert loop.time() - started < 0.9, "woken by NOTIFY, not by the 1 s poll"
    finally:
        await sequencer.stop()


async def test_an_unreachable_server_is_a_database_error() -> None:
    store = await PostgresEventStore.open("postgresql://postgres@127.0.0.1:1/x", wait_seconds=1)
    try:
        with pytest.raises(DatabaseError, match="database unavailable: connection failed"):
            await store.head_position()
        started = time.monotonic()
        with pytest.raises(DatabaseError, match="database unavailable: connection failed"):
            await store.head_position()
        assert time.monotonic() - started < 0.1, "known down: fails at once"
    finally:
        await store.close()


async def test_a_dropped_connection_is_a_database_error_and_the_next_call_works(
    store: PostgresEventStore, event_store_postgres_url: str
) -> None:
    stream = new_stream()
    await store.append(stream, batch(1))
    async with await psycopg.AsyncConnection.connect(
        conninfo(event_store_postgres_url), autocommit=True
    ) as admin:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'outrigger-event-store' AND datname = current_database()"
        )
    with pytest.raises(DatabaseError, match="database unavailable"):
        await store.append(stream, batch(1))
    assert (await store.append(stream, batch(1))).first_version == 1
