"""Clients that do not keep up, over a real uvicorn server: a slow one is disconnected (or loses
its oldest frames, by policy) while the others keep receiving everything; one that reads nothing
is cut off after the send timeout; and a server stopped by SIGTERM ends its streams with the
shutdown event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

import httpx
import pytest

from outrigger.testing import EndOfStream, SseReader, bearer, free_port, unique
from tests.notifications.api_support import (
    SECRET,
    hub_settings,
    ids,
    messages,
    sample,
    served,
)

if TYPE_CHECKING:
    from pathlib import Path

    from outrigger.sse import Frame
    from tests.notifications.api_support import Hub

PADDING = "x" * 4000  # a hundred of these fill the socket buffers several times
COUNT = 100


async def publish_padded(hub: Hub, channel: str) -> list[str]:
    return [await hub.publish(channel, {"n": n, "pad": PADDING}) for n in range(COUNT)]


async def until_counted(name: str, before: float, **labels: str) -> None:
    for _ in range(500):
        if sample(name, **labels) > before:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} {labels} did not grow")


async def rest_of(stream: SseReader) -> list[Frame]:
    """What a stream still delivers until it ends (cut off or not)."""
    found = []
    with contextlib.suppress(EndOfStream, httpx.RemoteProtocolError, httpx.ReadError):
        while True:
            frame = await stream.frame(max_wait=5)
            if not frame.is_heartbeat:
                found.append(frame)
    return found


async def test_a_slow_client_is_disconnected_while_the_others_get_everything() -> None:
    before = sample("outrigger_notifications_disconnects_total", reason="slow_consumer")
    channel = unique("firehose")
    settings = hub_settings(notifications_queue_size=5)
    async with (
        served(settings) as hub,
        hub.slow_client() as slow_client,
        hub.subscribe(channel, client=slow_client) as slow,
        hub.subscribe(channel) as keeping_up,
    ):
        reading = asyncio.create_task(messages(keeping_up, COUNT))
        sent = await publish_padded(hub, channel)
        assert ids(await reading) == sent
        await until_counted(
            "outrigger_notifications_disconnects_total", before, reason="slow_consumer"
        )
        received = await rest_of(slow)
        assert 0 < len(received) < COUNT
        assert ids(received) == sent[: len(received)], "what it got is in order, without gap"
        resume = {"Last-Event-ID": received[-1].id or ""}
        async with hub.subscribe(channel, headers=resume) as resumed:
            rest = await messages(resumed, COUNT - len(received))
    assert ids(received) + ids(rest) == sent, "it resumes where it was cut off"


async def test_drop_oldest_keeps_a_slow_client_connected_and_counts_what_it_lost() -> None:
    before = sample("outrigger_notifications_dropped_messages_total")
    channel = unique("firehose")
    settings = hub_settings(
        notifications_queue_size=5, notifications_slow_consumer_policy="drop-oldest"
    )
    async with (
        served(settings) as hub,
        hub.slow_client() as slow_client,
        hub.subscribe(channel, client=slow_client) as slow,
    ):
        sent = await publish_padded(hub, channel)
        received = []
        while not received or received[-1].id != sent[-1]:
            received.append(await slow.message())
    dropped = sample("outrigger_notifications_dropped_messages_total") - before
    assert len(received) + dropped == COUNT
    assert dropped > 0
    assert ids(received[-5:]) == sent[-5:], "the newest frames are kept"
    positions = [sent.index(frame.id or "") for frame in received]
    assert positions == sorted(positions)


async def test_a_client_that_reads_nothing_is_cut_off_after_the_send_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    labels = {"service": "notifications", "route": "/v1/sse"}
    before = sample("outrigger_sse_send_timeouts_total", **labels)
    before_disconnects = sample("outrigger_notifications_disconnects_total", reason="send_timeout")
    channel = unique("firehose")
    settings = hub_settings(
        notifications_send_timeout_seconds=0.3, notifications_heartbeat_seconds=0.1
    )
    with caplog.at_level(logging.WARNING):
        async with (
            served(settings) as hub,
            hub.slow_client() as slow_client,
            hub.subscribe(channel, client=slow_client) as stalled,
            hub.subscribe(channel) as keeping_up,
        ):
            reading = asyncio.create_task(messages(keeping_up, COUNT))
            sent = await publish_padded(hub, channel)
            assert ids(await reading) == sent
            await until_counted("outrigger_sse_send_timeouts_total", before, **labels)
            received = await rest_of(stalled)
    assert len(received) < COUNT
    assert (
        sample("outrigger_notifications_disconnects_total", reason="send_timeout")
        == before_disconnects + 1
    )
    lines = [r for r in caplog.records if r.name.startswith("outrigger")]
    assert [r.getMessage() for r in lines] == [
        "closed an SSE stream on /v1/sse: the client read nothing for 0.3 s"
    ]
    assert not [r for r in lines if r.exc_info]


async def test_sigterm_ends_every_stream_with_the_shutdown_event(tmp_path: Path) -> None:
    port = free_port()
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("OUTRIGGER")},
        "OUTRIGGER_PORT": str(port),
        "OUTRIGGER_JWT_SECRET": SECRET,
        "OUTRIGGER_REDIS_URL": "memory://",
        "OUTRIGGER_AMQP_URL": "memory://",
        "OUTRIGGER_DATA_DIR": str(tmp_path),
        "OUTRIGGER_SECRETS_DIR": str(tmp_path / "no-secrets"),
        "OUTRIGGER_SHUTDOWN_GRACE_SECONDS": "30",
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.notifications",
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        headers = bearer(hub_settings(), "notify:subscribe", channels=["**"])
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10
        ) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            async with client.stream("GET", "/v1/sse", params={"channel": "a"}) as response:
                assert response.status_code == 200
                server.send_signal(signal.SIGTERM)
                last = await SseReader(response).message()
                assert last.event == "shutdown"
        assert await asyncio.wait_for(server.wait(), 10) == 0
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
