"""The audit service: ingest from RabbitMQ beside its two ceilings, then pages, proofs and verify.

In one run, on one throwaway PostgreSQL database (created, migrated, dropped) and throwaway
exchanges and queues (deleted at the end):

1. **Ingest**, in interleaved rounds. The same N audit records (CloudEvents, ~300 bytes) are put
   in a queue before each consumer starts, so each one drains a full queue:
   - *audit*: `python -m services.audit` as shipped (default settings: batches of up to 500
     records or 50 ms, prefetch 1,000, the tree built as records are stored, acks after the
     commit); timed from its first stored record to its last (tree sizes polled every 20 ms).
   - *broker ceiling*: a bare aio-pika consumer with the same prefetch that only acks.
   - *database ceiling*: the same rows (body, hash and query columns) written by plain batched
     INSERTs of 500 into an unpartitioned copy of the records table, from one connection.
2. **Pages** at 100k and 1M records of one tenant (filled through the service's own storage
   adapter, tree and all): GET /v1/records with each filter, newest first, limit 100, p50/p99.
3. **Inclusion proofs** at the largest size: GET /v1/proofs/inclusion at random indexes.
4. **Verify**: GET /v1/verify over the whole tenant, records/s.

    .venv/bin/python bench/audit.py                          # 20,000 records x 3 rounds, 1M
    .venv/bin/python bench/audit.py --records 50000 --large 200000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import psycopg
from _httpload import free_port, process, wait_http
from _servers import add_server_options, throwaway_database

from outrigger.auth import TokenIssuer
from outrigger.bus.rabbitmq_consumer import delay_queue, work_queue_arguments
from outrigger.settings import Settings
from services.audit.adapters.postgres import PostgresAuditLog
from services.audit.consumers import MAX_ATTEMPTS
from services.audit.domain.models import AuditRecord
from services.audit.domain.rules import columns, leaf_of
from services.event_store.adapters.postgres_connection import conninfo

PYTHON = sys.executable
PREFETCH = 1000
BATCH = 500
ACTORS = [f"user-{i}" for i in range(100)]  # each actor ~1 % of the records
TYPES = [f"app.thing.{verb}" for verb in ("created", "updated", "deleted", "read", "shared")]


def record_data(i: int, tenant: str) -> dict[str, Any]:
    return {
        "actor": ACTORS[i % len(ACTORS)],
        "action": "update",
        "resource": f"order/{i % 5000}",
        "outcome": "failure" if i % 50 == 0 else "success",
        "tenant": tenant,
        "data": {"ip": "10.0.0.1", "fields": ["status", "total"], "n": i},
    }


def record(i: int, tenant: str, moment: datetime) -> AuditRecord:
    data = record_data(i, tenant)
    return AuditRecord(
        id=f"r-{i}",
        source="bench",
        type=TYPES[i % len(TYPES)],
        time=moment,
        actor=data["actor"],
        action=data["action"],
        resource=data["resource"],
        outcome=data["outcome"],
        tenant=tenant,
        data=data["data"],
    )


# --- ingest -----------------------------------------------------------------------------------


async def fill_queue(amqp_url: str, exchange: str, queue: str, count: int, tenant: str) -> None:
    """Declares `queue` as the kit does (so the service's own declaration agrees), binds it, and
    publishes `count` records to it with confirms."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        declared = await channel.declare_queue(
            queue, durable=True, arguments=work_queue_arguments(queue)
        )
        await declared.bind(ex, "#")
        now = datetime.now(UTC)
        pending: list[Any] = []
        for i in range(count):
            body = orjson.dumps(record_data(i, tenant))
            message = aio_pika.Message(
                body,
                content_type="application/json",
                message_id=f"{tenant}-{i}",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers={
                    "cloudEvents_specversion": "1.0",
                    "cloudEvents_id": f"{tenant}-{i}",
                    "cloudEvents_source": "bench",
                    "cloudEvents_type": TYPES[i % len(TYPES)],
                    "cloudEvents_time": now.isoformat(),
                },
            )
            pending.append(ex.publish(message, routing_key="bench.update"))
            if len(pending) >= 256:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)


async def bare_consumer(amqp_url: str, queue: str, count: int) -> float:
    """Drains `queue` acking each message; records/s from the first delivery to the last."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        q = await channel.get_queue(queue)
        done = asyncio.Event()
        seen = 0
        first = 0.0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal seen, first
            if seen == 0:
                first = time.perf_counter()
            await message.ack()
            seen += 1
            if seen == count:
                done.set()

        tag = await q.consume(on_message)
        await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - first
        await q.cancel(tag)
    return (count - 1) / elapsed


def insert_ceiling(url: str, count: int, tenant: str) -> float:
    """Plain batched INSERTs of the same rows into an unpartitioned copy of audit.records."""
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        leaf = leaf_of(record(i, tenant, now), now)
        kind, actor, resource, outcome, moment = columns(leaf)
        rows.append(
            (tenant, i, "bench", f"r-{i}", kind, actor, resource, outcome, moment, now,
             leaf.body, leaf.hash)
        )  # fmt: skip
    table = f"bench_records_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo(url), autocommit=True) as connection:
        connection.execute(
            f"CREATE TABLE {table} (tenant text, idx bigint, source text, id text, type text, "
            "actor text, resource text, outcome text, time timestamptz, recorded_at "
            "timestamptz, body bytea, leaf_hash bytea)"
        )
        for name, cols in (("idx", "tenant, idx DESC"), ("actor", "tenant, actor, idx DESC")):
            connection.execute(f"CREATE INDEX {table}_{name} ON {table} ({cols})")
        try:
            started = time.perf_counter()
            for start in range(0, count, BATCH):
                with connection.transaction(), connection.cursor() as cursor:
                    cursor.executemany(
                        f"INSERT INTO {table} VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                        rows[start : start + BATCH],
                    )
            elapsed = time.perf_counter() - started
        finally:
            connection.execute(f"DROP TABLE {table}")
    return count / elapsed


def tree_size(connection: psycopg.Connection[Any], tenant: str) -> int:
    found = connection.execute(
        "SELECT size FROM audit.trees WHERE tenant = %s", (tenant,)
    ).fetchone()
    return int(found[0]) if found else 0


def service_ingest(url: str, env: dict[str, str], log: Path, count: int, tenant: str) -> float:
    """Starts the service on the filled queue; records/s from its first stored record to the
    last."""
    with (
        psycopg.connect(conninfo(url), autocommit=True) as connection,
        process([PYTHON, "-m", "services.audit"], env, log),
    ):
        deadline = time.monotonic() + 600
        first_at, first_size = 0.0, 0
        while time.monotonic() < deadline:
            size = tree_size(connection, tenant)
            now = time.perf_counter()
            if size and not first_at:
                first_at, first_size = now, size
            if size >= count:
                return (count - first_size) / (now - first_at)
            time.sleep(0.02)
        stored = tree_size(connection, tenant)
    raise RuntimeError(f"the service stored only {stored} of {count} records; see {log}")


def ingest(args: argparse.Namespace, url: str, workdir: Path, env: dict[str, str]) -> None:
    run_id = env["OUTRIGGER_AUDIT_INGEST_EXCHANGE"].rsplit(".", 1)[1]
    results: dict[str, list[float]] = {"audit": [], "broker ceiling": [], "database ceiling": []}
    queues: list[str] = []
    for round_ in range(1, args.rounds + 1):
        print(f"ingest round {round_}: {args.records:,} records")
        for name in results:
            tenant = f"r{round_}-{name.split()[0]}-{run_id}"
            if name == "database ceiling":
                rate = insert_ceiling(url, args.records, tenant)
            else:
                queue = f"bench.audit.{run_id}.{round_}.{name.split()[0]}"
                queues.append(queue)
                exchange = env["OUTRIGGER_AUDIT_INGEST_EXCHANGE"]
                asyncio.run(fill_queue(args.amqp_url, exchange, queue, args.records, tenant))
                if name == "audit":
                    rate = service_ingest(
                        url,
                        {**env, "OUTRIGGER_AUDIT_INGEST_QUEUE": queue},
                        workdir / f"audit-{round_}.log",
                        args.records,
                        tenant,
                    )
                else:
                    rate = asyncio.run(bare_consumer(args.amqp_url, queue, args.records))
            results[name].append(rate)
            print(f"  {name:<18} {rate:>9,.0f} records/s")
    asyncio.run(delete_queues(args.amqp_url, queues, env))
    medians = {name: statistics.median(rates) for name, rates in results.items()}
    print("\ningest medians")
    for name, rate in medians.items():
        print(f"  {name:<18} {rate:>9,.0f} records/s")
    audit = medians["audit"]
    print(
        f"  audit / broker ceiling {audit / medians['broker ceiling']:.2f}x (target >= 0.6x), "
        f"audit / database ceiling {audit / medians['database ceiling']:.2f}x; "
        f"audit {audit:,.0f} records/s (target >= 5,000)"
    )


async def delete_queues(amqp_url: str, queues: list[str], env: dict[str, str]) -> None:
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel()
        for queue in queues:
            names = [queue, f"{queue}.dlq"]
            names += [delay_queue(queue, attempt) for attempt in range(1, MAX_ATTEMPTS)]
            for name in names:
                await channel.queue_delete(name)
        for name in ("OUTRIGGER_AUDIT_INGEST_EXCHANGE", "OUTRIGGER_AUDIT_CHECKPOINT_EXCHANGE"):
            await channel.exchange_delete(env[name])


# --- pages, proofs, verify ----------------------------------------------------------------------


async def fill_tree(url: str, tenant: str, start: int, end: int) -> None:
    """Appends records `start..end` through the service's storage adapter (tree and all), a
    month of `time` spread over them."""
    store = await PostgresAuditLog.open(url, max_size=2)
    try:
        base = datetime.now(UTC) - timedelta(days=30)
        for first in range(start, end, 1000):
            recorded = datetime.now(UTC)
            leaves = [
                leaf_of(record(i, tenant, base + timedelta(seconds=i * 2.5)), recorded)
                for i in range(first, min(first + 1000, end))
            ]
            await store.append(leaves)
    finally:
        await store.close()


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def timed(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> float:
    started = time.perf_counter()
    answer = await client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    answer.raise_for_status()
    return elapsed


async def pages(base: str, token: str, tenant: str, size: int, requests: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    since = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    until = (datetime.now(UTC) - timedelta(days=19)).isoformat()
    filters: dict[str, dict[str, Any]] = {
        "newest": {},
        "actor (1 %)": {"actor": ACTORS[7]},
        "type (20 %)": {"type": TYPES[2]},
        "resource (0.02 %)": {"resource": "order/42"},
        "outcome=failure (2 %)": {"outcome": "failure"},
        "one day (from/to)": {"from": since, "to": until},
    }
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        for name, where in filters.items():
            params = {"tenant": tenant, "limit": 100, **where}
            await timed(client, "/v1/records", params)  # warm
            samples = []
            for _ in range(requests):
                samples.append(await timed(client, "/v1/records", params))
            # and the second page, through the cursor
            first = (await client.get("/v1/records", params=params)).json()
            if first.get("next_cursor"):
                second = {**params, "cursor": first["next_cursor"]}
                for _ in range(requests // 4):
                    samples.append(await timed(client, "/v1/records", second))
            p50, p99 = percentiles(samples)
            print(f"  page at {size:>9,} {name:<24} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")


async def proofs_and_verify(base: str, token: str, tenant: str, size: int, requests: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(7)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as client:
        samples = []
        for _ in range(requests):
            params = {"tenant": tenant, "index": rng.randrange(size), "tree_size": size}
            samples.append(await timed(client, "/v1/proofs/inclusion", params))
        p50, p99 = percentiles(samples)
        print(f"  inclusion proof at {size:,}: p50 {p50:.2f} ms  p99 {p99:.2f} ms (target <= 10)")
        started = time.perf_counter()
        answer = await client.get("/v1/verify", params={"tenant": tenant})
        elapsed = time.perf_counter() - started
        answer.raise_for_status()
        body = answer.json()
        rate = body["records_checked"] / elapsed
        print(
            f"  verify of {body['records_checked']:,} records: {elapsed:.1f} s, {rate:,.0f} "
            f"records/s, ok={body['ok']} (target >= 100,000/s)"
        )


def reads(
    args: argparse.Namespace, url: str, workdir: Path, env: dict[str, str], token: str
) -> None:
    tenant = f"reads-{secrets.token_hex(3)}"
    port = int(env["OUTRIGGER_PORT"])
    base = f"http://127.0.0.1:{port}"
    done = 0
    for size in (args.large // 10, args.large):
        started = time.perf_counter()
        asyncio.run(fill_tree(url, tenant, done, size))
        print(f"\nfilled {size:,} records ({time.perf_counter() - started:.0f} s)")
        done = size
        with psycopg.connect(conninfo(url), autocommit=True) as connection:
            connection.execute("ANALYZE audit.records")
        reader_env = {**env, "OUTRIGGER_AUDIT_INGEST_ENABLED": "false"}
        with process([PYTHON, "-m", "services.audit"], reader_env, workdir / f"reads-{size}.log"):
            wait_http(f"{base}/readyz")
            asyncio.run(pages(base, token, tenant, size, args.requests))
            if size == args.large:
                asyncio.run(proofs_and_verify(base, token, tenant, size, args.requests))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_options(parser, amqp=True)
    parser.add_argument("--records", type=int, default=20_000, help="ingest records per round")
    parser.add_argument("--large", type=int, default=1_000_000, help="the large tree's size")
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 6))
    parser.add_argument("--requests", type=int, default=200, help="per page filter / proofs")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-reads", action="store_true")
    args = parser.parse_args()
    run_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    token = TokenIssuer.from_settings(Settings(jwt_secret=secret)).mint(
        "bench", ["audit:read", "audit:write"], 7200
    )
    with (
        throwaway_database(args.url, "bench_audit") as url,
        tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp,
    ):
        workdir = Path(tmp)
        env = {
            "OUTRIGGER_DATABASE_URL": url,
            "OUTRIGGER_AMQP_URL": args.amqp_url,
            "OUTRIGGER_JWT_SECRET": secret,
            "OUTRIGGER_PORT": str(free_port()),
            "OUTRIGGER_DATA_DIR": str(workdir / "data"),
            "OUTRIGGER_AUDIT_INGEST_EXCHANGE": f"bench.audit.{run_id}",
            "OUTRIGGER_AUDIT_CHECKPOINT_EXCHANGE": f"bench.checkpoints.{run_id}",
        }
        with contextlib.suppress(KeyboardInterrupt):
            if not args.skip_ingest:
                ingest(args, url, workdir, env)
            if not args.skip_reads:
                reads(args, url, workdir, env, token)


if __name__ == "__main__":
    main()
