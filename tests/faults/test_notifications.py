"""Two notifications replicas as separate processes on a private Redis and RabbitMQ: whatever
the entry point (either replica's HTTP, the broker), every message reaches every subscriber on
every replica once, in history order; a client that moves to the other replica with its
Last-Event-ID misses nothing, also when its replica is killed mid-stream; a Redis restart is
survived with nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from outrigger.auth import TokenIssuer
from outrigger.bus import CloudEvent, connect_bus
from outrigger.settings import Settings
from outrigger.testing import SseReader
from outrigger.testing.sse import EndOfStream
from tests.faults.conftest import SECRET
from tests.faults.support import Service, two_replicas

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from outrigger.sse import Frame
    from outrigger.testing.servers import PrivateRabbitMQ, PrivateRedis

READ_SECONDS = 15.0


def _token(channels: list[str]) -> str:
    issuer = TokenIssuer.from_settings(Settings(jwt_secret=SECRET))
    return issuer.mint("faults", ["notify:publish", "notify:subscribe"], 3600, channels=channels)


HEADERS = {"Authorization": f"Bearer {_token(['**'])}"}


def _env(redis: PrivateRedis, rabbitmq: PrivateRabbitMQ) -> dict[str, str]:
    return {
        "OUTRIGGER_REDIS_URL": redis.url,
        "OUTRIGGER_AMQP_URL": rabbitmq.url,
        "OUTRIGGER_JWT_SECRET": SECRET,
        "OUTRIGGER_NOTIFICATIONS_KEY_PREFIX": f"faults{uuid.uuid4().hex[:6]}",
        "OUTRIGGER_NOTIFICATIONS_HEARTBEAT_SECONDS": "1",
    }


@pytest.fixture
def replicas(
    tmp_path: Path, durable_redis: PrivateRedis, rabbitmq_server: PrivateRabbitMQ
) -> Iterator[tuple[Service, Service]]:
    """Two replicas of one hub (one key prefix) on the private Redis and RabbitMQ."""
    with two_replicas("notifications", _env(durable_redis, rabbitmq_server), tmp_path) as both:
        yield both


async def _ready(*services: Service) -> None:
    await asyncio.gather(*(service.ready() for service in services))


async def _publish(service: Service, channel: str, n: int, **extra: Any) -> str:
    async with httpx.AsyncClient(base_url=service.url, headers=HEADERS, timeout=10) as http:
        body = {"event": "tick", "data": {"n": n}, **extra}
        answer = await http.post(f"/v1/channels/{channel}/events", json=body)
    assert answer.status_code in (200, 201), answer.text
    published: str = answer.json()["id"]
    return published


@contextlib.asynccontextmanager
async def _subscribe(
    service: Service, *channels: str, last_event_id: str | None = None
) -> AsyncIterator[SseReader]:
    params: list[tuple[str, str]] = [("channel", channel) for channel in channels]
    headers = dict(HEADERS)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with (
        httpx.AsyncClient(base_url=service.url, headers=headers, timeout=READ_SECONDS) as http,
        http.stream("GET", "/v1/sse", params=params) as response,
    ):
        assert response.status_code == 200, await response.aread()
        yield SseReader(response)


async def _ticks(reader: SseReader, count: int) -> list[Frame]:
    found: list[Frame] = []
    while len(found) < count:
        frame = await reader.message(READ_SECONDS)
        if frame.event == "tick":
            found.append(frame)
    return found


def _numbers(frames: list[Frame]) -> list[int]:
    return [frame.json()["n"] for frame in frames]


async def test_every_entry_point_reaches_every_replica_once_in_order(
    replicas: tuple[Service, Service], rabbitmq_server: PrivateRabbitMQ
) -> None:
    first, second = replicas
    await _ready(first, second)
    bus = connect_bus(rabbitmq_server.url, source="tests.faults")
    await bus.start()
    try:
        async with (
            _subscribe(first, "orders.*") as on_first,
            _subscribe(second, "orders.eu") as on_second,
        ):
            ids = []
            for n in range(30):
                if n % 3 == 2:
                    event = CloudEvent.new(source="tests", type="tick", data={"n": n})
                    await bus.publish("outrigger.notifications", "orders.eu", event)
                else:
                    ids.append(await _publish((first, second)[n % 3], "orders.eu", n))
            retried = await _publish(second, "orders.eu", 99, id="only-once")
            assert await _publish(first, "orders.eu", 99, id="only-once") == retried

            received = [await _ticks(reader, 31) for reader in (on_first, on_second)]
            with pytest.raises(TimeoutError):  # and nothing more: no duplicate arrives late
                async with asyncio.timeout(1.5):
                    await _ticks(on_first, 1)
    finally:
        await bus.close()
    for frames in received:
        assert sorted(_numbers(frames)[:30]) == list(range(30))
        assert _numbers(frames)[30] == 99
        history = [frame.id for frame in frames]
        assert len(set(history)) == len(history)
        assert history == sorted(history, key=lambda text: tuple(map(int, text.split("-"))))
    assert [f.id for f in received[0]] == [f.id for f in received[1]]
    assert set(ids) <= {frame.id for frame in received[0]}


async def test_a_client_moving_to_the_other_replica_misses_nothing(
    replicas: tuple[Service, Service],
) -> None:
    first, second = replicas
    await _ready(first, second)
    async with _subscribe(first, "moves") as reader:
        for n in range(10):
            await _publish(first, "moves", n)
        seen = await _ticks(reader, 10)
    for n in range(10, 20):
        await _publish(first, "moves", n)
    async with _subscribe(second, "moves", last_event_id=seen[-1].id) as reader:
        await _publish(second, "moves", 20)
        resumed = await _ticks(reader, 11)
    assert _numbers(resumed) == list(range(10, 21))


async def test_a_replica_killed_mid_stream_loses_nothing_history_holds(
    replicas: tuple[Service, Service],
) -> None:
    first, second = replicas
    await _ready(first, second)
    published = 0
    stop = asyncio.Event()

    async def publish_steadily() -> None:
        nonlocal published
        while not stop.is_set() and published < 400:
            await _publish(second, "steady", published)
            published += 1
            await asyncio.sleep(0.01)

    publisher = asyncio.create_task(publish_steadily())
    received: list[Frame] = []
    try:
        with contextlib.suppress(httpx.HTTPError, EndOfStream):
            async with _subscribe(first, "steady", last_event_id="0-0") as reader:
                received += await _ticks(reader, 20)
                first.kill()
                while True:
                    received += await _ticks(reader, 1)
        async with _subscribe(second, "steady", last_event_id=received[-1].id) as reader:
            await asyncio.sleep(0.5)
            stop.set()
            await publisher
            received += await _ticks(reader, published - len(received))
    finally:
        stop.set()
        await publisher
    assert _numbers(received) == list(range(published))


async def test_a_redis_restart_is_survived_with_nothing_acknowledged_lost(
    replicas: tuple[Service, Service], durable_redis: PrivateRedis
) -> None:
    first, second = replicas
    await _ready(first, second)
    acknowledged: list[int] = []
    async with _subscribe(first, "survives", last_event_id="0-0") as reader:
        for n in range(5):
            await _publish(second, "survives", n)
            acknowledged.append(n)
        durable_redis.stop()
        async with httpx.AsyncClient(base_url=second.url, headers=HEADERS, timeout=10) as http:
            answer = await http.post(
                "/v1/channels/survives/events", json={"event": "tick", "data": {"n": -1}}
            )
        assert answer.status_code == 503
        assert "retry-after" in answer.headers
        durable_redis.start()
        await _ready(first, second)
        for n in range(5, 10):
            await _publish(second, "survives", n)
            acknowledged.append(n)
        received = await _ticks(reader, 10)
    assert _numbers(received) == acknowledged
