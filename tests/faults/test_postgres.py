"""PostgreSQL restarted, stopped and crashed under the event store while clients append."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import httpx
import psycopg

from outrigger.db import conninfo
from outrigger.testing import unique
from tests.faults.appends import append_load, assert_stored
from tests.faults.support import PROBLEM, Service, assert_clean, count, loaded

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from outrigger.testing.servers import PrivatePostgres


async def test_a_postgres_restart_loses_no_acknowledged_append(
    event_store: Service, postgres_server: PrivatePostgres, headers: dict[str, str]
) -> None:
    category = unique("pgrestart")
    async with loaded(append_load(event_store, headers, category)) as load:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(postgres_server.restart, "fast")
        assert await event_store.ready() < 30
        await asyncio.sleep(0.5)
    assert_clean(load.answers)
    assert load.answers[-1].status == 201
    await assert_stored(event_store, headers, category, load.acknowledged)


async def test_with_postgres_stopped_appends_fail_at_once_and_a_new_replica_starts(
    event_store: Service,
    postgres_server: PrivatePostgres,
    headers: dict[str, str],
    tmp_path: Path,
) -> None:
    category = unique("pgstop")
    replica = event_store.replica(tmp_path)
    try:
        async with loaded(append_load(event_store, headers, category)) as load:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(postgres_server.stop, "fast")
            replica.start()  # a replica that starts while its database is down
            await replica.serving()
            await asyncio.sleep(1)
            async with httpx.AsyncClient(base_url=event_store.url) as http:
                ready = await http.get("/readyz")
            assert await replica.answers("/readyz") == 503
            known = time.monotonic()  # the outage is known: readiness said so
            during = await load.answers_sent_after(known, count=8, within=10)
            await asyncio.to_thread(postgres_server.start)
            assert await event_store.ready() < 30
            assert await replica.ready() < 30
            await asyncio.sleep(0.5)
        assert (ready.status_code, ready.headers["content-type"]) == (503, PROBLEM)
        assert ready.headers["retry-after"] == "1"
        assert "database unavailable" in ready.json()["checks"]["database"]
        assert_clean(load.answers)
        assert count(during, 503) == len(during) == 8
        assert max(answer.seconds for answer in during) < 0.5, "a known outage fails at once"
        assert {answer.problem_type for answer in during} == {
            "https://outrigger.dev/problems/database-unavailable"
        }
        await assert_stored(event_store, headers, category, load.acknowledged)
    finally:
        replica.stop()


async def test_a_postgres_crash_loses_no_acknowledged_append(
    event_store: Service, postgres_server: PrivatePostgres, headers: dict[str, str]
) -> None:
    category = unique("pgcrash")
    async with loaded(append_load(event_store, headers, category)) as load:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(postgres_server.kill)
        await asyncio.sleep(1)
        await asyncio.to_thread(postgres_server.start)  # recovers from the WAL
        assert await event_store.ready() < 30
        await asyncio.sleep(0.5)
    assert_clean(load.answers)
    assert count(load.answers, 503) > 0
    assert load.answers[-1].status == 201
    await assert_stored(event_store, headers, category, load.acknowledged)


async def test_appends_whose_clients_left_give_their_connections_back(
    event_store: Service, postgres_server: PrivatePostgres, headers: dict[str, str]
) -> None:
    """The pool (20 connections) is taken by appends blocked on a stream's lock: the service
    stays ready; once their clients give up, the statements are cancelled and the pool serves
    the next request at once, long before the lock would be released."""
    stream = unique("locked-")
    body = {"events": [{"type": "Blocked", "data": {}}]}
    async with await psycopg.AsyncConnection.connect(
        conninfo(postgres_server.database_url(_database_name(event_store))), autocommit=True
    ) as admin:
        await admin.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (stream,))
        async with httpx.AsyncClient(base_url=event_store.url, headers=headers) as http:
            blocked = [
                asyncio.create_task(http.post(f"/v1/streams/{stream}/events", json=body))
                for _ in range(25)
            ]
            await _until(lambda: _appends_waiting(admin), 20)
            ready = await http.get("/readyz", timeout=3)
            for request in blocked:
                request.cancel()
            await asyncio.gather(*blocked, return_exceptions=True)
        left = time.monotonic()
        await _until(lambda: _appends_waiting(admin), 0)
        released = time.monotonic() - left
        async with httpx.AsyncClient(base_url=event_store.url, headers=headers) as http:
            other = await http.post(f"/v1/streams/{unique('free-')}/events", json=body, timeout=3)
    assert ready.status_code == 200, ready.text
    assert released < 2, f"statements ran on {released:.1f} s after their clients left"
    assert other.status_code == 201


def _database_name(service: Service) -> str:
    return service.settings["OUTRIGGER_DATABASE_URL"].rpartition("/")[2]


async def _appends_waiting(admin: psycopg.AsyncConnection[object]) -> int:
    cursor = await admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'outrigger-event-store'"
        " AND state = 'active' AND wait_event_type = 'Lock'"
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _until(measure: Callable[[], Awaitable[int]], value: int, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while (seen := await measure()) != value:
        assert time.monotonic() < deadline, f"{seen} appends wait for the lock, not {value}"
        await asyncio.sleep(0.05)
