"""The kit's PostgreSQL access on a real server: session timeouts on every kind of connection,
the query metric, the errors, and the pool with its probe while the server goes away (a private
server, which these tests stop and start)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from typing import TYPE_CHECKING

import psycopg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from outrigger.db import Database, Pool, connect, conninfo, session_url
from outrigger.errors import ConnectionPoolError, DatabaseError
from outrigger.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from outrigger.testing.servers import PrivatePostgres

LIMITS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")


def settings_for(url: str, **overrides: object) -> Settings:
    return Settings(database_url=url, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def pool(postgres_url: str) -> AsyncIterator[Pool]:
    pool = Pool.from_settings(settings_for(postgres_url), application_name="kit-test")
    await pool.open()
    yield pool
    await pool.close()


async def _limits(connection: psycopg.AsyncConnection[object]) -> list[str]:
    cursor = await connection.execute(
        "SELECT setting FROM pg_settings WHERE name = ANY(%s) ORDER BY name", (list(LIMITS),)
    )
    return [str(row[0]) for row in await cursor.fetchall()]


@pytest.mark.postgres
async def test_every_connection_carries_the_session_timeouts_of_the_settings(
    postgres_url: str,
) -> None:
    settings = settings_for(
        postgres_url,
        database_statement_timeout_seconds=7,
        database_lock_timeout_seconds=2,
        database_idle_in_transaction_timeout_seconds=9,
    )
    expected = ["9000", "2000", "7000"]  # idle_in_transaction…, lock_timeout, statement_timeout
    pool = Pool.from_settings(settings, application_name="kit-test")
    await pool.open()
    database = Database.from_settings(settings)
    try:
        async with pool.connection() as connection:
            assert await _limits(connection) == expected
        async with await connect(session_url(settings), "kit-test-dedicated") as dedicated:
            assert await _limits(dedicated) == expected
        async with database.engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT setting FROM pg_settings WHERE name = ANY(:n) ORDER BY name"),
                {"n": list(LIMITS)},
            )
            assert list(rows.scalars()) == expected
    finally:
        await pool.close()
        await database.dispose()


@pytest.mark.postgres
async def test_a_statement_stuck_behind_a_lock_is_a_503_after_the_lock_timeout(
    postgres_url: str,
) -> None:
    key = uuid.uuid4().int >> 65
    pool = Pool.from_settings(
        settings_for(postgres_url, database_lock_timeout_seconds=0.2), application_name="kit-test"
    )
    await pool.open()
    try:
        async with await psycopg.AsyncConnection.connect(
            conninfo(postgres_url), autocommit=True
        ) as holder:
            await holder.execute("SELECT pg_advisory_lock(%s)", (key,))
            started = time.monotonic()
            with pytest.raises(DatabaseError, match="database busy: canceling statement") as busy:
                async with pool.connection() as connection:
                    await connection.execute("SELECT pg_advisory_lock(%s)", (key,))
            assert time.monotonic() - started < 2
            assert busy.value.status == 503
            assert busy.value.headers["Retry-After"] == "1"
    finally:
        await pool.close()


@pytest.mark.postgres
async def test_statements_are_timed_by_name_or_verb(postgres_url: str) -> None:
    name = f"kit_{uuid.uuid4().hex[:8]}"
    statement = f"SELECT 1 AS {name}"
    pool = Pool(postgres_url, application_name="kit-test", names={statement: name})
    await pool.open()

    def count(label: str) -> float:
        sample = "outrigger_db_query_duration_seconds_count"
        return REGISTRY.get_sample_value(sample, {"query": label}) or 0.0

    before = count(name), count("select")
    try:
        async with pool.connection() as connection:
            await connection.execute(statement)
            await connection.execute("SELECT 2")
    finally:
        await pool.close()
    assert (count(name), count("select")) == (before[0] + 1, before[1] + 1)


@pytest.mark.postgres
async def test_a_pool_with_every_connection_taken_is_exhausted_but_ready(
    postgres_url: str,
) -> None:
    pool = Pool(postgres_url, application_name="kit-test", max_size=1, wait_seconds=0.3)
    await pool.open()
    try:
        async with pool.connection():
            with pytest.raises(ConnectionPoolError, match="no database connection free"):
                async with pool.connection():
                    pass
            await pool.check()  # its own connection
    finally:
        await pool.close()


async def test_a_pool_opens_while_its_server_is_down_and_serves_once_it_is_up(
    postgres_server: PrivatePostgres,
) -> None:
    await asyncio.to_thread(postgres_server.stop)
    pool = Pool(postgres_server.url, application_name="kit-test", wait_seconds=5)
    await pool.open()
    try:
        with pytest.raises(DatabaseError, match="database unavailable"):
            await pool.check()
        started = time.monotonic()
        with pytest.raises(DatabaseError, match="database unavailable: connection failed"):
            async with pool.connection():
                pass
        assert time.monotonic() - started < 0.5, "known down: no wait for the pool"
        await asyncio.to_thread(postgres_server.start)
        await pool.check()
        await _until_it_answers(pool, within=5)
    finally:
        await pool.close()


async def _select_one(pool: Pool) -> object:
    async with pool.connection() as connection:
        return await (await connection.execute("SELECT 1")).fetchone()


async def _until_it_answers(pool: Pool, *, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            assert await _select_one(pool) == (1,)
            return
        except DatabaseError:
            assert time.monotonic() < deadline, f"the pool did not recover within {within:g} s"
            await asyncio.sleep(0.1)


async def test_while_the_server_is_down_requests_fail_at_once_and_recover_after(
    postgres_server: PrivatePostgres,
) -> None:
    pool = Pool(postgres_server.url, application_name="kit-test", max_size=4, wait_seconds=5)
    await pool.open()
    select_one = functools.partial(_select_one, pool)
    try:
        assert await asyncio.gather(*(select_one() for _ in range(4))) == [(1,)] * 4
        await asyncio.to_thread(postgres_server.stop)
        failures = []
        for _ in range(6):  # the broken connections, then the known outage
            started = time.monotonic()
            with pytest.raises(DatabaseError, match="database unavailable") as failed:
                await select_one()
            failures.append((time.monotonic() - started, failed.value.status))
        assert max(seconds for seconds, _ in failures) < 1, failures
        assert {status for _, status in failures} == {503}
        await asyncio.sleep(4)  # every slot of the pool has given up reconnecting
        await asyncio.to_thread(postgres_server.start)
        await _until_it_answers(pool, within=3)
        assert await asyncio.gather(*(select_one() for _ in range(4))) == [(1,)] * 4
    finally:
        await pool.close()


@pytest.mark.postgres
async def test_a_cancellation_the_pool_swallowed_is_honoured_and_the_connection_kept(
    postgres_url: str,
) -> None:
    """On Python 3.11 psycopg_pool's wait_for can swallow a cancellation that lands as it hands
    over a connection; the handler must not then run its query for a client that left."""
    pool = Pool(postgres_url, application_name="kit-test", max_size=1)
    await pool.open()
    ran = False

    async def handler() -> None:
        nonlocal ran
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as wait_for does
            await asyncio.sleep(1)
        async with pool.connection() as connection:
            ran = True
            await connection.execute("SELECT 1")

    try:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.create_task(handler())
        assert not ran
        async with pool.connection() as connection:  # the pool's one connection is back
            await connection.execute("SELECT 1")
    finally:
        await pool.close()
