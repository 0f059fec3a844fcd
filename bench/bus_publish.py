"""Publish throughput: the kit's RabbitMQ publisher against a bare aio-pika publisher.

In one run, against one broker: persistent messages with publisher confirms, 256 confirms in
flight, the same body size and count, into one throwaway queue bound to one throwaway topic
exchange (both deleted at the end). Rounds are interleaved (bare, kit publish_many, kit
concurrent publish) and the queue is purged between them. Prints msgs/s medians and ratios.
The event loop is uvloop, as the services run (`outrigger serve`); `--loop asyncio` for the
standard one.

    .venv/bin/python bench/bus_publish.py [--messages 20000] [--rounds 3] [--size 256]
        [--queue-type classic|quorum] [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from typing import TYPE_CHECKING

import aio_pika
import orjson
import uvloop

from outrigger.bus import CloudEvent
from outrigger.bus.rabbitmq import RabbitMQBus

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

WINDOW = 256
ROUND_LIMIT_SECONDS = 120.0


def payload(size: int) -> dict[str, str]:
    """A JSON object whose encoding is `size` bytes."""
    return {"payload": "x" * (size - len(orjson.dumps({"payload": ""})))}


async def in_flight(count: int, publish_one: Callable[[int], Awaitable[object]]) -> None:
    """Publishes `count` messages with `WINDOW` of them awaiting their confirm at any time."""
    numbers = iter(range(count))

    async def worker() -> None:
        for n in numbers:
            await publish_one(n)

    await asyncio.gather(*(worker() for _ in range(min(WINDOW, count))))


async def timed(label: str, count: int, run: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """Messages per second, and client CPU microseconds per message."""
    started, cpu = time.perf_counter(), time.process_time()
    async with asyncio.timeout(ROUND_LIMIT_SECONDS):
        await run()
    rate = count / (time.perf_counter() - started)
    cpu_us = (time.process_time() - cpu) / count * 1e6
    print(f"  {label:<24} {rate:>10,.0f} msgs/s {cpu_us:>8.0f} µs CPU/msg")
    return rate, cpu_us


async def main(url: str, messages: int, rounds: int, size: int, queue_type: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    exchange_name, queue_name = f"bench.bus.{suffix}", f"bench.bus.{suffix}"
    data = payload(size)
    body = orjson.dumps(data)
    events = [
        CloudEvent.new(source="bench", type="bench.published", data=data) for _ in range(messages)
    ]
    connection = await aio_pika.connect(url)
    bus = RabbitMQBus(url, source="bench")
    rates: dict[str, list[tuple[float, float]]] = {
        "bare": [],
        "kit publish_many": [],
        "kit publish x256": [],
    }
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            queue_name, durable=True, arguments={"x-queue-type": queue_type}
        )
        await queue.bind(exchange, "#")
        await bus.start()

        async def bare() -> None:
            async def one(_: int) -> object:
                message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                return await exchange.publish(message, "bench.published")

            await in_flight(messages, one)

        async def kit_many() -> None:
            await bus.publish_many(exchange_name, [("bench.published", e) for e in events])

        async def kit_concurrent() -> None:
            await in_flight(messages, lambda n: bus.publish(exchange_name, "bench", events[n]))

        runs = {"bare": bare, "kit publish_many": kit_many, "kit publish x256": kit_concurrent}
        print(
            f"{messages} messages of {size} bytes, {WINDOW} in flight, {queue_type} queue, "
            f"{type(asyncio.get_running_loop()).__module__.split('.')[0]} loop"
        )
        for number in range(1, rounds + 1):
            print(f"round {number}")
            for label, run in runs.items():
                rates[label].append(await timed(label, messages, run))
                await queue.purge()
    finally:
        await bus.close()
        async with connection:
            cleanup = await connection.channel()
            await cleanup.queue_delete(queue_name)
            await cleanup.exchange_delete(exchange_name)
    report(rates)


def report(rates: dict[str, list[tuple[float, float]]]) -> None:
    bare = statistics.median(rate for rate, _ in rates["bare"])
    print("medians")
    for label, values in rates.items():
        median = statistics.median(rate for rate, _ in values)
        cpu_us = statistics.median(cpu for _, cpu in values)
        print(
            f"  {label:<24} {median:>10,.0f} msgs/s {cpu_us:>8.0f} µs CPU/msg"
            f"   {median / bare:.2f}x bare"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("OUTRIGGER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=256, help="body bytes")
    parser.add_argument("--queue-type", choices=["classic", "quorum"], default="classic")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    arguments = parser.parse_args()
    loop_factory = uvloop.new_event_loop if arguments.loop == "uvloop" else None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(
            main(
                arguments.url,
                arguments.messages,
                arguments.rounds,
                arguments.size,
                arguments.queue_type,
            )
        )
