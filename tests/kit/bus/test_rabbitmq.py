"""The bus contract on RabbitMQ, plus the broker going away and coming back (a private node,
which the test stops and starts)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from outrigger.bus import MessageBus
from outrigger.bus.rabbitmq import RabbitMQBus
from outrigger.errors import MessagingError
from outrigger.testing import unique
from outrigger.testing.broker import remove
from tests.kit.bus.contract import BusContract, Inbox, Names, event, eventually, metric

if TYPE_CHECKING:
    from outrigger.testing.servers import PrivateRabbitMQ

pytestmark = pytest.mark.rabbitmq


def close_connection(name: str) -> None:
    """Has the broker close the client connection called `name`, as a network drop would."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        check=True,
        capture_output=True,
        text=True,
    )
    [pid] = [line.split("\t")[0] for line in listed.stdout.splitlines() if f'"{name}"' in line]
    subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "test"], check=True)


class Proxy:
    """A TCP proxy to the broker, so a test can drop the bus's connection, refuse new ones (as a
    network cut or a broker restart would) or hold every byte back (a broker that hangs),
    without touching the shared broker."""

    def __init__(self, target: str) -> None:
        self.target = urlsplit(target)
        self.port = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._links: dict[asyncio.Task[None], list[asyncio.StreamWriter]] = {}
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        netloc = f"{self.target.username}:{self.target.password}@127.0.0.1:{self.port}"
        self.url = urlunsplit(self.target._replace(netloc=netloc))

    async def cut(self, *, down_for: float = 0.0) -> None:
        """Drops every connection; with `down_for`, refuses new ones for that long."""
        if down_for and self._server is not None:
            self._server.close()
        for writers in self._links.values():
            for writer in writers:
                writer.transport.abort()
        await asyncio.gather(*self._links, return_exceptions=True)
        if down_for:
            await asyncio.sleep(down_for)
            await self.listen()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = asyncio.current_task()
        assert link is not None
        self._links[link] = [writer]
        try:
            host, port = self.target.hostname or "127.0.0.1", self.target.port or 5672
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
            self._links[link].append(upstream_writer)
            await asyncio.gather(
                self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
            )
        finally:
            for end in self._links.pop(link):
                end.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copies until either side ends, then ends the other."""
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.transport.abort()


class TestRabbitMQBus(BusContract):
    system = "rabbitmq"

    @pytest.fixture
    def bus_url(self, amqp_url: str) -> str:
        return amqp_url

    def make_bus(self, url: str, **options: Any) -> MessageBus:
        options.setdefault("timeout_seconds", 5.0)
        options.setdefault("source", "tests/bus")
        return RabbitMQBus(url, reconnect_interval_seconds=0.5, **options)

    async def forget(self) -> None:
        await remove(self.url, self.declared.queues, self.declared.exchanges)

    async def test_work_and_delay_queues_are_quorum_queues(
        self, bus: MessageBus, names: Names
    ) -> None:
        queue = names.queue()
        await bus.subscribe(queue, [], Inbox(), max_attempts=3, retry_delay_seconds=0.5)
        listed = await asyncio.to_thread(
            subprocess.run,
            [
                "rabbitmqctl",
                "-q",
                "list_queues",
                "name",
                "type",
                "arguments",
                "--formatter",
                "json",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        ours = {q["name"]: q for q in json.loads(listed.stdout) if q["name"].startswith(queue)}
        assert set(ours) == {queue, f"{queue}.dlq", f"{queue}.retry.1", f"{queue}.retry.2"}
        assert {q["type"] for q in ours.values()} == {"quorum"}
        arguments = {name: {a[0]: a[2] for a in q["arguments"]} for name, q in ours.items()}
        assert [arguments[f"{queue}.retry.{n}"]["x-message-ttl"] for n in (1, 2)] == [500, 1000]
        assert arguments[f"{queue}.retry.1"]["x-dead-letter-routing-key"] == queue
        assert arguments[queue]["x-dead-letter-exchange"] == "outrigger.dlx"

    async def test_start_fails_fast_when_the_broker_is_unreachable(self) -> None:
        bus = RabbitMQBus("amqp://guest:guest@127.0.0.1:1/", source="tests", timeout_seconds=2)
        started = time.monotonic()
        with pytest.raises(MessagingError, match="unreachable"):
            await bus.start()
        assert time.monotonic() - started < 3
        await bus.close()

    async def test_publish_many_frames_large_bodies_beside_single_publishes(
        self, bus: MessageBus, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        inbox = Inbox()
        await bus.subscribe(queue, [(exchange, "#")], inbox)
        big = event(data=bytes(range(256)) * 2000, datacontenttype="application/octet-stream")
        batch = [big, *(event(data={"i": i}) for i in range(600))]
        singles = [event(data={"single": i}) for i in range(50)]
        await asyncio.gather(
            bus.publish_many(exchange, [("k.many", e) for e in batch]),
            *(bus.publish(exchange, "k.one", e) for e in singles),
        )
        await inbox.wait(len(batch) + len(singles))
        received = {d.event.id: d.event for d in inbox.deliveries}
        assert set(received) == {e.id for e in batch + singles}
        assert received[big.id].data == big.data

    async def test_publish_many_sends_again_what_a_dropped_connection_left_unconfirmed(
        self, new_bus: Any, names: Names, caplog: pytest.LogCaptureFixture
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        bus, inbox = await new_bus(), Inbox()
        await bus.subscribe(queue, [(exchange, "#")], inbox)
        source = f"tests/bus/{names.exchange()}"
        publisher = await new_bus(source=source)
        await publisher.publish(exchange, "warm-up", first := event())
        sent = [event(data={"i": i, "pad": "x" * 2000}) for i in range(20_000)]
        publishing = asyncio.create_task(publisher.publish_many(exchange, [("k", e) for e in sent]))
        await asyncio.sleep(0.2)
        assert not publishing.done(), "the batch went out before the connection could drop"
        caplog.set_level(logging.INFO)
        await asyncio.to_thread(close_connection, f"outrigger {source}")
        await asyncio.wait_for(publishing, timeout=60)
        await eventually(lambda: {e.id for e in sent} <= set(inbox.ids), within=60)
        assert first.id in inbox.ids
        broker = urlsplit(self.url)
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert [(r.name, r.getMessage().split(" (")[0]) for r in loud] == [
            (
                "outrigger.bus",
                f"lost the connection to RabbitMQ at {broker.hostname}:{broker.port or 5672}",
            )
        ]

    @pytest.mark.usefixtures("new_bus")  # whose teardown deletes what the test declared
    async def test_a_lost_connection_logs_one_warning_and_the_bus_recovers(
        self, names: Names, caplog: pytest.LogCaptureFixture
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        proxy = Proxy(self.url)
        await proxy.listen()
        bus = RabbitMQBus(
            proxy.url, source="tests/bus", timeout_seconds=5, reconnect_interval_seconds=0.2
        )
        inbox = Inbox()
        try:
            await bus.start()
            await bus.subscribe(queue, [(exchange, "#")], inbox)
            await bus.publish(exchange, "before", event())
            await inbox.wait(1)
            caplog.set_level(logging.INFO)
            for outage, down_for in enumerate([0.0, 1.0], 1):
                await proxy.cut(down_for=down_for)
                await bus.publish(exchange, "after", event())  # waits for the reconnection
                await bus.publish_many(exchange, [("after", event()) for _ in range(50)])
                await inbox.wait(1 + 51 * outage)
                await eventually(lambda n=outage: len(reconnected(caplog)) == n)
        finally:
            await bus.close()
            await proxy.close()
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert [(r.name, r.levelname) for r in loud] == [("outrigger.bus", "WARNING")] * 2
        assert {r.getMessage().split(" (")[0] for r in loud} == {
            f"lost the connection to RabbitMQ at 127.0.0.1:{proxy.port}"
        }
        assert [r.name for r in caplog.records if r.exc_info] == []
        assert {r.name for r in caplog.records} == {"outrigger.bus"}

    async def test_a_message_the_broker_refuses_fails_the_publish(
        self, traced_bus: MessageBus, names: Names, spans: InMemorySpanExporter
    ) -> None:
        bus = traced_bus
        exchange, full = names.exchange(), names.queue("full")
        connection = await aio_pika.connect(self.url)
        async with connection:
            channel = await connection.channel()
            await bus.declare_exchange(exchange)
            arguments = {"x-max-length": 0, "x-overflow": "reject-publish"}
            queue = await channel.declare_queue(full, durable=True, arguments=arguments)
            await queue.bind(exchange, "#")
        with pytest.raises(MessagingError, match="refused a message"):
            await bus.publish(exchange, "k", event())
        with pytest.raises(MessagingError, match="refused a message"):
            await bus.publish_many(exchange, [("k", event()) for _ in range(30)])
        assert metric("outrigger_bus_publish_failures_total", exchange=exchange) == 2
        failed = [s for s in spans.get_finished_spans() if s.name == f"publish {exchange}"]
        assert [s.status.status_code for s in failed] == [StatusCode.ERROR] * 2
        assert [dict(s.attributes or {}).get("error.type") for s in failed] == [
            "MessagingError"
        ] * 2

    async def test_an_exchange_deleted_meanwhile_fails_once_then_is_declared_again(
        self, bus: MessageBus, names: Names
    ) -> None:
        exchange, queue = names.exchange(), names.queue()
        await bus.publish(exchange, "k", event())
        connection = await aio_pika.connect(self.url)
        async with connection:
            await (await connection.channel()).exchange_delete(exchange)
        with pytest.raises(MessagingError, match="does not exist"):
            await bus.publish_many(exchange, [("k", event()) for _ in range(5)])
        inbox = Inbox()
        await bus.subscribe(queue, [(exchange, "#")], inbox)
        await bus.publish_many(exchange, [("k", event()) for _ in range(5)])
        await inbox.wait(5)

    async def test_publishing_fails_when_the_broker_stops_confirming(self, names: Names) -> None:
        exchange = names.exchange()
        proxy = Proxy(self.url)
        await proxy.listen()
        bus = RabbitMQBus(proxy.url, source="tests/bus", timeout_seconds=1)
        try:
            await bus.start()
            await bus.declare_exchange(exchange)
            proxy.flowing.clear()
            started = time.monotonic()
            with pytest.raises(MessagingError, match="did not confirm within 1s"):
                await bus.publish(exchange, "k", event())
            with pytest.raises(MessagingError, match="confirmed nothing for 1s"):
                await bus.publish_many(exchange, [("k", event()) for _ in range(20)])
            assert time.monotonic() - started < 5
        finally:
            proxy.flowing.set()
            await bus.close()
            await proxy.close()


def reconnected(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("reconnected to RabbitMQ")]


async def test_the_same_bus_recovers_after_a_broker_restart(
    rabbitmq_server: PrivateRabbitMQ,
) -> None:
    exchange, queue = unique("tests.bus.x"), unique("tests.bus.q")
    bus = RabbitMQBus(
        rabbitmq_server.url, source="tests/bus", timeout_seconds=3.0, reconnect_interval_seconds=0.5
    )
    await bus.start()
    try:
        inbox = Inbox()
        await bus.subscribe(queue, [(exchange, "#")], inbox)
        await bus.publish(exchange, "before", event())
        await inbox.wait(1)
        await asyncio.to_thread(rabbitmq_server.stop)
        with pytest.raises(MessagingError):
            await bus.check()
        with pytest.raises(MessagingError):
            await bus.publish(exchange, "during", event())
        with pytest.raises(MessagingError):
            await bus.publish_many(exchange, [("during", event()) for _ in range(300)])
        await asyncio.to_thread(rabbitmq_server.start)
        deadline = time.monotonic() + 60
        while True:
            try:
                await bus.check()
                break
            except MessagingError:
                assert time.monotonic() < deadline, "the bus did not reconnect within 60s"
                await asyncio.sleep(0.2)
        await bus.publish(exchange, "after", after := event())
        await inbox.wait(2, within=30)
        assert after.id in inbox.ids
    finally:
        await bus.close()
