"""The event-store relay: how fast it publishes a backlog of the global log to RabbitMQ.

In one run, on one throwaway PostgreSQL database (created, migrated, dropped) and one throwaway
exchange with a durable classic queue bound to it (deleted at the end): N single events are
appended (100 per append) and sequenced, then `Relay.publish_batch` publishes the whole log from
a fresh checkpoint, with publisher confirms and a checkpoint write per batch, at several batch
sizes (the relay's `batch_size`, and what lingering gathers under load), in interleaved rounds.
Prints events/s and the client's CPU µs per event per run, then medians. Compare the CPU with
the bare aio-pika publisher of `bus_publish.py` (no log read, no checkpoint, no headers).

    .venv/bin/python bench/event_store_relay.py                         # 20,000 events x 3 rounds
    .venv/bin/python bench/event_store_relay.py --events 50000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time

import aio_pika
import psycopg
from _servers import add_server_options, throwaway_database

from outrigger.bus import connect_bus
from outrigger.leadership import SoleLeadership
from services.event_store.adapters.postgres import PostgresEventStore
from services.event_store.adapters.postgres_connection import conninfo
from services.event_store.domain import EventData
from services.event_store.usecases import Relay

BATCH_SIZES = (20, 100, 1000)
DATA = {"n": 0, "text": "a small event of about sixty bytes of JSON"}


async def fill(store: PostgresEventStore, url: str, events: int) -> None:
    for start in range(0, events, 100):
        batch = [EventData(type="Happened", data=DATA) for _ in range(min(100, events - start))]
        await store.append(f"bench-{start // 100}", batch)
    with psycopg.connect(conninfo(url), autocommit=True) as connection:
        while connection.execute("SELECT event_store.sequence_batch(100000)").fetchone()[0]:  # type: ignore[index]
            pass


async def main(url: str, amqp_url: str, events: int, rounds: int) -> None:
    suffix = secrets.token_hex(4)
    exchange, queue = f"bench.relay.{suffix}", f"bench.relay.{suffix}"
    store = await PostgresEventStore.open(url)
    bus = connect_bus(amqp_url, source="bench")
    connection = await aio_pika.connect(amqp_url)
    results: dict[int, list[tuple[float, float]]] = {size: [] for size in BATCH_SIZES}
    try:
        await bus.start()
        await bus.declare_exchange(exchange)
        channel = await connection.channel()
        bound = await channel.declare_queue(queue, durable=True)
        await bound.bind(exchange, "#")
        await fill(store, url, events)
        print(f"{events:,} events in the log; {rounds} rounds")
        for number in range(1, rounds + 1):
            print(f"round {number}")
            for size in BATCH_SIZES:
                checkpoint = f"bench-{suffix}-{number}-{size}"
                relay = Relay(
                    store,
                    bus,
                    SoleLeadership(checkpoint),
                    exchange=exchange,
                    checkpoint=checkpoint,
                    batch_size=size,
                )
                started, cpu, published = time.perf_counter(), time.process_time(), 0
                while sent := await relay.publish_batch():
                    published += sent
                elapsed, used = time.perf_counter() - started, time.process_time() - cpu
                results[size].append((published / elapsed, used / published * 1e6))
                print(f"  batch {size:>5}  {published / elapsed:>9,.0f} events/s  "
                      f"{used / published * 1e6:>6.0f} µs CPU/event")  # fmt: skip
                await bound.purge()
    finally:
        async with connection:
            cleanup = await connection.channel()
            await cleanup.queue_delete(queue)
            await cleanup.exchange_delete(exchange)
        await bus.close()
        await store.close()
    print("medians")
    for size, runs in results.items():
        rate = statistics.median(rate for rate, _ in runs)
        cpu_us = statistics.median(cpu for _, cpu in runs)
        print(f"  batch {size:>5}  {rate:>9,.0f} events/s  {cpu_us:>6.0f} µs CPU/event")


def events_count(text: str) -> int:
    count = int(text)
    if not 1_000 <= count <= 200_000:
        raise argparse.ArgumentTypeError("between 1,000 and 200,000 events")
    return count


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=events_count, default=20_000, help="1,000-200,000")
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 6))
    add_server_options(parser, amqp=True)
    args = parser.parse_args()
    with throwaway_database(args.url, "es_relay_bench") as url:
        asyncio.run(main(url, args.amqp_url, args.events, args.rounds))


if __name__ == "__main__":
    run()
