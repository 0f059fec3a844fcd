"""Append throughput of the event store on PostgreSQL, in process, against its ceiling and peer.

In one run, on one throwaway database (created, migrated, dropped): the PostgreSQL adapter
(`PostgresEventStore.append`, the sequencer running) with 1, 8 and 32 concurrent clients, 1 and
100 events per append; the ceiling, plain asyncpg INSERTs of the same rows into a copy of the
`events` table (`LIKE … INCLUDING ALL`: same columns, defaults and indexes), one row per
statement and 100 rows per `INSERT … SELECT FROM unnest(…)`; the peer, the `eventsourcing`
package's PostgreSQL recorder (threads sharing one Application, one event per save), run from
its own virtualenv; the same stored function through the kit's SQLAlchemy `Database`. Then the
sequencer delay (transaction start → visible in the log) and the log's catch-up read rate.
Rounds are interleaved; medians are printed as Markdown.

    python3 -m venv /tmp/es-peer && /tmp/es-peer/bin/pip install 'eventsourcing[postgres]'
    .venv/bin/python bench/event_store_append.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
import orjson
from _servers import add_server_options, throwaway_database
from sqlalchemy import text

from outrigger.db import Database
from outrigger.leadership import AdvisoryLockLeadership
from outrigger.settings import Settings
from services.event_store.adapters.codec import events_json
from services.event_store.adapters.postgres import PostgresEventStore
from services.event_store.adapters.postgres_connection import connect
from services.event_store.domain import EventData
from services.event_store.usecases import Sequencer
from services.event_store.usecases.sequencer import ELECTION

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

CLIENTS, BATCHES = (1, 8, 32), (1, 100)
DATA = {"n": 0, "text": "a small event of about sixty bytes of JSON"}
Result = tuple[float, float, float]  # events/s, p50 ms, p99 ms

PEER = """
import json, sys, threading, time
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

class Thing(Aggregate):
    @event("Happened")
    def happen(self, n, text):
        self.n = n

def work(thing, mine):
    while time.perf_counter() - start < seconds:
        began = time.perf_counter()
        thing.happen(n=len(mine), text="a small event of about sixty bytes of JSON")
        app.save(thing)
        mine.append(time.perf_counter() - began)

threads, seconds = int(sys.argv[1]), float(sys.argv[2])
app, things, times = Application(), [Thing() for _ in range(threads)], [[] for _ in range(threads)]
app.save(*things)
start = time.perf_counter()
workers = [threading.Thread(target=work, args=pair) for pair in zip(things, times)]
for w in workers: w.start()
for w in workers: w.join()
took, done = time.perf_counter() - start, sorted(t for mine in times for t in mine)
print(json.dumps([len(done) / took, done[len(done) // 2] * 1e3, done[int(len(done) * .99)] * 1e3]))
"""


async def drive(clients: int, seconds: float, call: Callable[[int, int], Awaitable[int]]) -> Result:
    """Each client calls `call(client, n)` (returns events written) in a loop for `seconds`."""
    latencies: list[float] = []
    written = 0
    start = time.perf_counter()

    async def client(number: int) -> None:
        nonlocal written
        n = 0
        while time.perf_counter() - start < seconds:
            began = time.perf_counter()
            count = await call(number, n)
            latencies.append(time.perf_counter() - began)
            written += count
            n += 1

    await asyncio.gather(*(client(c) for c in range(clients)))
    return summary(written / (time.perf_counter() - start), latencies)


def summary(rate: float, latencies: list[float]) -> Result:
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1e3
    return rate, p50, latencies[int(len(latencies) * 0.99)] * 1e3


async def adapter(url: str, clients: int, size: int, seconds: float) -> Result:
    store = await PostgresEventStore.open(url, min_size=clients, max_size=clients)
    run = uuid.uuid4().hex[:8]

    async def call(client: int, n: int) -> int:
        events = [EventData("Happened", DATA) for _ in range(size)]
        await store.append(f"bench{run}-{client}", events)
        return size

    try:
        return await drive(clients, seconds, call)
    finally:
        await store.close()


async def ceiling(url: str, clients: int, size: int, seconds: float) -> Result:
    pool = await asyncpg.create_pool(url, min_size=clients, max_size=clients)
    run = uuid.uuid4().hex[:8]
    one = (
        "INSERT INTO scratch_events (stream_id, version, event_id, type, data, metadata) "
        "VALUES ($1, $2, $3, 'Happened', $4::jsonb, '{}')"
    )
    many = (
        "INSERT INTO scratch_events (stream_id, version, event_id, type, data, metadata) "
        "SELECT $1, v, i, 'Happened', d, '{}' FROM unnest($2::bigint[], $3::uuid[], $4::jsonb[]) "
        "AS t(v, i, d)"
    )

    async def call(client: int, n: int) -> int:
        stream = f"bench{run}-{client}"
        if size == 1:
            await pool.execute(one, stream, n, uuid.uuid4(), orjson.dumps(DATA).decode())
            return 1
        versions = list(range(n * size, (n + 1) * size))
        ids = [uuid.uuid4() for _ in versions]
        await pool.execute(many, stream, versions, ids, [orjson.dumps(DATA).decode()] * size)
        return size

    try:
        return await drive(clients, seconds, call)
    finally:
        await pool.close()


async def kit_database(url: str, clients: int, size: int, seconds: float) -> Result:
    settings = Settings(database_url=url, database_pool_size=clients, database_max_overflow=0)
    engine = Database.from_settings(settings).engine.execution_options(isolation_level="AUTOCOMMIT")
    run = uuid.uuid4().hex[:8]
    statement = text("SELECT * FROM event_store.append(:s, NULL, CAST(:e AS jsonb))")

    async def call(client: int, n: int) -> int:
        payload = events_json([EventData("Happened", DATA) for _ in range(size)])
        async with engine.connect() as connection:
            await connection.execute(statement, {"s": f"bench{run}-{client}", "e": payload})
        return size

    try:
        return await drive(clients, seconds, call)
    finally:
        await engine.dispose()


def peer(python: str, url: str, threads: int, seconds: float, functions: bool) -> Result:
    """The peer's script in its own virtualenv (it is synchronous: threads, one Application)."""
    parts = urlsplit(url)
    env = {
        **os.environ,
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts.path.lstrip("/"),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": parts.username or "postgres",
        "POSTGRES_PASSWORD": parts.password or "",
        "POSTGRES_POOL_SIZE": str(threads),
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y" if functions else "n",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".py") as script:
        script.write(PEER)
        script.flush()
        command = [python, script.name, str(threads), str(seconds)]
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=seconds + 120, check=True
        )
    rate, p50, p99 = json.loads(done.stdout.strip().splitlines()[-1])
    return rate, p50, p99


async def sequencer_delay(url: str, seconds: float) -> tuple[Result, float, float]:
    """8 single-event clients with a follower reading the log: delay p50/p99 in ms."""
    store = await PostgresEventStore.open(url, min_size=9, max_size=9)
    after, stop = await store.head_position(), asyncio.Event()
    delays: list[float] = []

    async def follow() -> None:
        nonlocal after
        while not stop.is_set():
            if await store.wait_for_log(after, max_wait=0.2) > after:
                events = await store.read_log(after, 10_000)
                seen = time.time()
                delays.extend(seen - e.created.timestamp() for e in events)
                after = events[-1].global_position or after

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    run = uuid.uuid4().hex[:8]

    async def call(client: int, n: int) -> int:
        await store.append(f"delay{run}-{client}", [EventData("Happened", DATA)])
        return 1

    result = await drive(8, seconds, call)
    await asyncio.sleep(0.5)
    stop.set()
    await follower
    await store.close()
    _, p50, p99 = summary(0, delays)
    return result, p50, p99


async def catch_up(url: str, limit: int = 300_000) -> tuple[int, float]:
    store = await PostgresEventStore.open(url)
    started, after, read = time.perf_counter(), 0, 0
    while read < limit and (events := await store.read_log(after, 10_000)):
        read, after = read + len(events), events[-1].global_position or after
    rate = read / (time.perf_counter() - started)
    await store.close()
    return read, rate


def median(results: list[Result]) -> Result:
    rate, p50, p99 = (statistics.median(column) for column in zip(*results, strict=True))
    return rate, p50, p99


async def bench(url: str, args: argparse.Namespace) -> None:
    raw = url.replace("postgresql+psycopg://", "postgresql://")
    setup = await asyncpg.connect(raw)
    await setup.execute("CREATE TABLE scratch_events (LIKE event_store.events INCLUDING ALL)")
    await setup.close()
    sequenced = await PostgresEventStore.open(url, max_size=2)
    election = AdvisoryLockLeadership(lambda: connect(url, "bench-sequencer"), ELECTION)
    sequencer = Sequencer(sequenced, election)
    sequencer.start()
    cells: dict[tuple[str, int, int], list[Result]] = {}
    for round_ in range(args.rounds):
        for size in BATCHES:
            for clients in CLIENTS:
                for name, run in plan(url, size, clients, args).items():
                    rate, p50, p99 = result = await run()
                    cells.setdefault((name, size, clients), []).append(result)
                    print(
                        f"round {round_ + 1} {name:<20} {size:>3} ev/append {clients:>2} clients"
                        f" {rate:>9,.0f} ev/s p50 {p50:6.2f} ms p99 {p99:6.2f} ms",
                        file=sys.stderr,
                    )
    delays = [await sequencer_delay(url, args.seconds) for _ in range(args.rounds)]
    await sequencer.stop()
    await sequenced.close()
    read, read_rate = await catch_up(url)
    report(cells, delays, read, read_rate)


def plan(
    url: str, size: int, clients: int, args: argparse.Namespace
) -> dict[str, Callable[[], Awaitable[Result]]]:
    """What one cell measures, in order: adapter, ceiling, kit Database, peer."""
    raw, seconds = url.replace("postgresql+psycopg://", "postgresql://"), args.seconds
    runs: dict[str, Callable[[], Awaitable[Result]]] = {
        "adapter": partial(adapter, url, clients, size, seconds),
        "ceiling": partial(ceiling, raw, clients, size, seconds),
    }
    if size == 1 and clients == 8:
        runs["kit Database"] = partial(kit_database, url, clients, size, seconds)
    for functions, name in ((False, "peer"), (True, "peer, db functions")):
        if size == 1 and args.peer_python:
            run = partial(peer, args.peer_python, raw, clients, seconds, functions)
            runs[name] = partial(asyncio.to_thread, run)
    return runs


def report(
    cells: dict[tuple[str, int, int], list[Result]], delays: list[Any], read: int, read_rate: float
) -> None:
    print("| system | events/append | clients | events/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for (name, size, clients), results in cells.items():
        rate, p50, p99 = median(results)
        print(f"| {name} | {size} | {clients} | {rate:,.0f} | {p50:.2f} | {p99:.2f} |")
    print()
    for size in BATCHES:
        for clients in CLIENTS:
            ours = median(cells[("adapter", size, clients)])[0]
            roof = median(cells[("ceiling", size, clients)])[0]
            line = f"{size} ev/append, {clients} clients: adapter/ceiling {ours / roof:.2f}x"
            for name in ("peer", "peer, db functions", "kit Database"):
                if (name, size, clients) in cells:
                    line += f", adapter/{name} {ours / median(cells[name, size, clients])[0]:.2f}x"
            print(line)
    rate = statistics.median(d[0][0] for d in delays)
    p50, p99 = (statistics.median(d[i] for d in delays) for i in (1, 2))
    print(f"\nsequencer delay (8 clients, {rate:,.0f} ev/s): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"catch-up read of the log: {read:,} events at {read_rate:,.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_options(parser)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (max 30)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peer-python", default="/tmp/es-peer/bin/python")
    args = parser.parse_args()
    args.seconds = min(args.seconds, 30.0)
    if not Path(args.peer_python).exists():
        print(f"no peer: {args.peer_python} is missing (see the docstring)", file=sys.stderr)
        args.peer_python = None
    with throwaway_database(args.url, "es_bench") as url:
        asyncio.run(bench(url, args))


if __name__ == "__main__":
    main()
