"""A real browser: Debian's headless Chromium, driven by playwright, follows a channel with
`EventSource` and `?access_token=` through a balancer in front of two notifications replicas.
When the replica it is connected to is killed, the browser reconnects by itself, lands on the
other replica, and continues from its `Last-Event-ID` with nothing missed and nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from playwright.async_api import async_playwright

from outrigger.auth import TokenIssuer
from outrigger.settings import Settings
from outrigger.testing import free_port
from tests.faults.support import Service, two_replicas

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

pytestmark = [pytest.mark.redis, pytest.mark.rabbitmq]

SECRET = "browser-test-secret-of-at-least-32-bytes"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WAIT_SECONDS = 20.0
FOLLOW = """([url]) => {
    window.got = []; window.opened = 0; window.ids = [];
    const source = new EventSource(url);
    source.onopen = () => { window.opened += 1; };
    source.addEventListener("tick", (event) => {
        window.got.push(JSON.parse(event.data).n); window.ids.push(event.lastEventId);
    });
}"""


def _token(scopes: list[str], channels: list[str]) -> str:
    issuer = TokenIssuer.from_settings(Settings(jwt_secret=SECRET))
    return issuer.mint("browser", scopes, 3600, channels=channels)


@pytest.fixture
def replicas(tmp_path: Path, redis_url: str, vhost: str) -> Iterator[tuple[Service, Service]]:
    env = {
        "OUTRIGGER_REDIS_URL": redis_url,
        "OUTRIGGER_AMQP_URL": vhost,
        "OUTRIGGER_JWT_SECRET": SECRET,
        "OUTRIGGER_NOTIFICATIONS_KEY_PREFIX": f"browser{uuid.uuid4().hex[:6]}",
    }
    with two_replicas("notifications", env, tmp_path) as both:
        yield both


@contextlib.asynccontextmanager
async def balancer(*backends: Service) -> AsyncIterator[str]:
    """A TCP balancer on a free port: each connection goes to the first backend that accepts
    it, as a load balancer with health checks would send it; its URL."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def serve(client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        for backend in backends:
            try:
                upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", backend.port)
            except OSError:
                continue
            await asyncio.gather(pipe(client_reader, upstream), pipe(upstream_reader, client))
            return
        client.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        yield f"http://127.0.0.1:{port}"


async def _publish(service: Service, n: int) -> None:
    headers = {"Authorization": f"Bearer {_token(['notify:publish'], [])}"}
    async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=10) as http:
        answer = await http.post(
            "/v1/channels/browser.ticks/events", json={"event": "tick", "data": {"n": n}}
        )
    assert answer.status_code == 201, answer.text


async def _until(page: Any, expression: str, what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while not (value := await page.evaluate(expression)):
        if time.monotonic() > deadline:
            state = await page.evaluate("[window.got, window.opened]")
            pytest.fail(f"the browser did not {what} within {WAIT_SECONDS:g} s: {state}")
        await asyncio.sleep(0.1)
    return value


async def test_a_browser_follows_a_channel_across_a_killed_replica(
    replicas: tuple[Service, Service],
) -> None:
    first, second = replicas
    await asyncio.gather(first.ready(), second.ready())
    token = _token(["notify:subscribe"], ["browser.*"])
    async with balancer(first, second) as url, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(f"{url}/healthz")  # the page's origin is the balancer's
            await page.evaluate(FOLLOW, [f"/v1/sse?channel=browser.ticks&access_token={token}"])
            await _until(page, "window.opened === 1", "open its stream")
            for n in range(5):
                await _publish(second, n)
            await _until(page, "window.got.length >= 5", "receive the first five events")

            first.kill()  # the replica the browser is connected to
            for n in range(5, 10):
                await _publish(second, n)
            await _until(page, "window.got.length >= 10", "receive the rest after reconnecting")
            await asyncio.sleep(0.5)  # room for a duplicate to show up
            got, opened, ids = await page.evaluate("[window.got, window.opened, window.ids]")
        finally:
            await browser.close()
    assert got == list(range(10))
    assert opened == 2  # it reconnected once, by itself
    assert len(set(ids)) == 10
