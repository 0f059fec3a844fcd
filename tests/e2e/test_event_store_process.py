"""`outrigger serve event-store` as its own process, on PostgreSQL and RabbitMQ.

The process gets a fresh migrated database and a fresh RabbitMQ vhost, and only its settings from
the environment. An event appended over HTTP reads back, arrives on an SSE subscription and, through
the relay, on a queue bound to the events exchange; SIGTERM then stops the process cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import aio_pika
import httpx
import pytest

from outrigger.auth import ALL_SCOPES, TokenIssuer
from outrigger.bus.cloudevents import text_headers
from outrigger.clients import EventStoreClient
from outrigger.resilience import Policy
from outrigger.settings import Settings
from outrigger.testing import free_port
from tests.databases import migrated_database

if TYPE_CHECKING:
    from collections.abc import Iterator

    from aio_pika.abc import AbstractIncomingMessage

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

OUTRIGGER = str(Path(sys.executable).with_name("outrigger"))
START_SECONDS = 30.0
WAIT_SECONDS = 20.0


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    """A fresh database beside the test one, migrated; its SQLAlchemy URL."""
    with migrated_database(postgres_url) as url:
        yield url


class Process:
    """`outrigger serve event-store`, logging to a file."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.log_path = folder / "event-store.log"
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                [OUTRIGGER, "serve", "event-store"],
                env=env,
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    async def ready(self, base: str) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=1) as http:
            for _ in range(int(START_SECONDS / 0.1)):
                if self.popen.poll() is not None:
                    pytest.fail(f"the event store exited ({self.popen.returncode}):\n{self.log()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        pytest.fail(f"the event store was not ready within {START_SECONDS:g}s:\n{self.log()}")

    async def terminate(self) -> int:
        self.popen.send_signal(signal.SIGTERM)
        for _ in range(int(WAIT_SECONDS / 0.05)):
            if (code := self.popen.poll()) is not None:
                return code
            await asyncio.sleep(0.05)
        self.popen.kill()
        self.popen.wait(5)
        pytest.fail(f"the event store did not stop within {WAIT_SECONDS:g}s:\n{self.log()}")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)


async def test_a_served_event_store_appends_reads_streams_relays_and_stops_on_sigterm(
    tmp_path: Path, database: str, vhost: str
) -> None:
    port, secret = free_port(), secrets.token_hex(32)
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OUTRIGGER_", "OTEL_"))},
        "OUTRIGGER_HOST": "127.0.0.1",
        "OUTRIGGER_PORT": str(port),
        "OUTRIGGER_DATA_DIR": str(tmp_path / "data"),
        "OUTRIGGER_SECRETS_DIR": str(tmp_path / "no-secrets"),
        "OUTRIGGER_DATABASE_URL": database,
        "OUTRIGGER_AMQP_URL": vhost,
        "OUTRIGGER_JWT_SECRET": secret,
        "OUTRIGGER_SHUTDOWN_GRACE_SECONDS": "5",
        "OUTRIGGER_EVENT_STORE_RELAY_IDLE_WAIT_SECONDS": "0.2",
    }
    token = TokenIssuer.from_settings(Settings(jwt_secret=secret)).mint(
        "e2e", sorted(ALL_SCOPES), 600
    )

    broker = await aio_pika.connect(vhost)
    async with broker:
        channel = await broker.channel()
        exchange = await channel.declare_exchange(
            "outrigger.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        relayed = await channel.declare_queue("e2e.relayed", exclusive=True)
        await relayed.bind(exchange, "order.#")

        process = Process(env, tmp_path)
        try:
            await process.ready(base)
            async with EventStoreClient(base, token=token, policy=Policy("e2e")) as client:
                subscription = client.subscribe(category="order")
                first_seen = asyncio.ensure_future(anext(subscription))

                event_id = str(uuid.uuid4())
                body = {
                    "expected_version": "no_stream",
                    "events": [{"id": event_id, "type": "Placed", "data": {"total": 42}}],
                }
                async with httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=5
                ) as http:
                    appended = await http.post("/v1/streams/order-7/events", json=body)
                    assert appended.status_code == 201, appended.text
                    page = (await http.get("/v1/streams/order-7/events")).json()
                assert [(e["id"], e["type"], e["data"]) for e in page["events"]] == [
                    (event_id, "Placed", {"total": 42})
                ]

                seen = await asyncio.wait_for(first_seen, WAIT_SECONDS)
                await subscription.aclose()
            assert (str(seen.id), seen.stream_id, seen.version) == (event_id, "order-7", 0)

            message = await _next_message(relayed)
            assert message.routing_key == "order.Placed"
            assert message.message_id == event_id
            headers = text_headers(message.headers)
            assert headers["cloudEvents_subject"] == "order-7"
            assert headers["cloudEvents_sequence"] == str(seen.global_position)
            assert message.body == b'{"total":42}'

            code = await process.terminate()
        finally:
            process.kill()
    assert code == 0, process.log()
    assert "Traceback" not in process.log()


async def _next_message(queue: aio_pika.abc.AbstractQueue) -> AbstractIncomingMessage:
    for _ in range(int(WAIT_SECONDS / 0.05)):
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.05)
    pytest.fail(f"no message reached {queue.name} within {WAIT_SECONDS:g}s")
