"""Appends as fault-suite load, and the proof that every acknowledged one is stored, sequenced
into the global log and relayed to RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import aio_pika
import httpx

from tests.faults.support import READY_WITHIN_SECONDS, Load

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from aio_pika.abc import AbstractIncomingMessage

    from tests.faults.support import Service

Appended = tuple[str, str]  # stream id, event id


def append_load(service: Service, headers: dict[str, str], category: str) -> Load:
    """Clients appending one event at a time, each to its stream `<category>-<client>`."""

    async def append(http: httpx.AsyncClient, client: str, n: int) -> tuple[httpx.Response, Any]:
        stream, event_id = f"{category}-{client}", str(uuid.uuid4())
        body = {"events": [{"id": event_id, "type": "FaultTested", "data": {"n": n}}]}
        return await http.post(f"/v1/streams/{stream}/events", json=body), (stream, event_id)

    return Load(append, service.url, headers)


async def assert_stored(
    service: Service, headers: dict[str, str], category: str, acknowledged: list[Appended]
) -> None:
    """Every acknowledged event is in its stream, and in the global log within 30 s."""
    assert acknowledged, "nothing was acknowledged"
    by_stream: dict[str, set[str]] = defaultdict(set)
    for stream, event_id in acknowledged:
        by_stream[stream].add(event_id)
    async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=10) as http:
        for stream, ids in by_stream.items():
            page = await http.get(f"/v1/streams/{stream}/events", params={"limit": 1000})
            assert page.status_code == 200, page.text
            stored = {event["id"] for event in page.json()["events"]}
            assert ids <= stored, f"acknowledged but lost from {stream}: {ids - stored}"
        wanted = {event_id for _, event_id in acknowledged}
        logged: set[str] = set()
        after, deadline = 0, time.monotonic() + READY_WITHIN_SECONDS
        while not wanted <= logged:
            assert time.monotonic() < deadline, f"not in the global log: {wanted - logged}"
            params = {"after": after, "category": category, "limit": 1000}
            page = await http.get("/v1/log", params=params)
            assert page.status_code == 200, page.text
            logged |= {event["id"] for event in page.json()["events"]}
            after = page.json()["next_after"]
            if not page.json()["events"]:
                await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def relayed(amqp_url: str, category: str) -> AsyncIterator[set[str]]:
    """The ids of the events of `category` the relay publishes, from a durable quorum queue
    bound before the fault, so it keeps what arrives while the test breaks things."""
    connection = await aio_pika.connect_robust(amqp_url, reconnect_interval=0.5)
    ids: set[str] = set()

    async def received(message: AbstractIncomingMessage) -> None:
        async with message.process():
            if message.message_id:
                ids.add(message.message_id)

    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            "outrigger.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            f"faults.{category}", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(exchange, f"{category}.#")
        await queue.consume(received)
        yield ids


async def assert_relayed(ids: set[str], acknowledged: list[Appended]) -> None:
    """Every acknowledged event reached the queue (at least once) within 30 s."""
    wanted = {event_id for _, event_id in acknowledged}
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    while not wanted <= ids:
        assert time.monotonic() < deadline, f"never relayed: {len(wanted - ids)} events"
        await asyncio.sleep(0.2)
