"""Slow and oversized clients cannot exhaust a service: served with the kit's real uvicorn
options, 200 of them are cut off within the timeouts, the process's memory stays bounded, and a
well-behaved client is served all along."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import APIRouter

from outrigger.http import create_app
from outrigger.testing import serving
from tests.kit.http.conftest import SECRET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

TIMEOUT = 1.0
MEBIBYTE = 1024 * 1024


def build(tmp_path: Path) -> FastAPI:
    from outrigger.settings import Settings

    settings = Settings(
        jwt_secret=SECRET,
        data_dir=tmp_path,
        access_log="off",
        http_header_timeout_seconds=TIMEOUT,
        http_body_timeout_seconds=TIMEOUT,
    )
    router = APIRouter()

    @router.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    return create_app("kit-test", settings, routers=[router])


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def closed_after(reader: asyncio.StreamReader, started: float) -> float:
    """Seconds from `started` until the server closed the connection (what it said, ignored)."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass
    return time.monotonic() - started


async def trickle(writer: asyncio.StreamWriter, head: bytes, drip: bytes) -> None:
    """Sends `head`, then `drip` every 0.1 s until the server stops listening."""
    with contextlib.suppress(ConnectionError):
        writer.write(head)
        while not writer.is_closing():
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(drip)


async def flood(writer: asyncio.StreamWriter, total: int) -> None:
    """Sends a request head of `total` bytes that never ends, as fast as the server takes it."""
    chunk = b"X-Filler: " + b"a" * 65000 + b"\r\n"
    with contextlib.suppress(ConnectionError):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
        for _ in range(total // len(chunk)):
            writer.write(chunk)
            await writer.drain()


@contextlib.asynccontextmanager
async def attackers(url: str) -> AsyncIterator[list[asyncio.Task[float]]]:
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    closings: list[asyncio.Task[float]] = []
    senders: list[asyncio.Task[None]] = []
    writers: list[asyncio.StreamWriter] = []
    kinds = ["slow head"] * 150 + ["slow body"] * 30 + ["huge head"] * 20
    for kind in kinds:
        reader, writer = await asyncio.open_connection(host, int(port))
        closings.append(asyncio.create_task(closed_after(reader, started)))
        writers.append(writer)
        if kind == "slow head":
            sending = trickle(writer, b"GET /healthz HTTP/1.1\r\nHost: test\r\n", b"X-A: b\r\n")
        elif kind == "slow body":
            head = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            sending = trickle(writer, head + b"Content-Length: 100000\r\n\r\n{", b" ")
        else:
            sending = flood(writer, 16 * MEBIBYTE)
        senders.append(asyncio.create_task(sending))
    try:
        yield closings
    finally:
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        for writer in writers:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for writer in writers), return_exceptions=True)


@pytest.mark.timeout(60)
async def test_slow_and_oversized_clients_are_cut_off_while_others_are_served(
    tmp_path: Path,
) -> None:
    app = build(tmp_path)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
        assert (await client.get("/healthz")).status_code == 200
        before = rss_bytes()
        async with attackers(url) as closings:
            served = []
            slowest = 0.0
            while not all(task.done() for task in closings):
                sent = time.monotonic()
                answer = await client.post("/echo", json={"n": len(served)})
                slowest = max(slowest, time.monotonic() - sent)
                served.append(answer.status_code)
                await asyncio.sleep(0.05)
                assert len(served) < 200, "the slow clients were never cut off"
            grown = rss_bytes() - before
        closed = [task.result() for task in closings]
    assert set(served) == {200}
    assert len(served) >= 5
    assert slowest < 0.5, f"a well-behaved request took {slowest:.2f} s"
    assert max(closed) < TIMEOUT + 2, f"the slowest was cut off after {max(closed):.1f} s"
    assert grown < 64 * MEBIBYTE, f"the process grew by {grown / MEBIBYTE:.0f} MiB"


async def test_the_header_deadline_also_holds_for_silent_and_kept_alive_connections(
    tmp_path: Path,
) -> None:
    async with serving(build(tmp_path)) as url:
        host, port = url.removeprefix("http://").split(":")
        silent_reader, silent = await asyncio.open_connection(host, int(port))
        reader, writer = await asyncio.open_connection(host, int(port))
        started = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        await reader.readexactly(len(b'{"status":"ok"}'))
        sending = asyncio.create_task(trickle(writer, b"GET /healthz HTTP/1.1\r\n", b"X-A: b\r\n"))
        kept_alive, quiet = await asyncio.gather(
            closed_after(reader, started), closed_after(silent_reader, started)
        )
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        for stream in (writer, silent):
            stream.close()
            await stream.wait_closed()
    assert kept_alive < TIMEOUT + 1.5
    assert quiet < TIMEOUT + 1.5


async def answer_to(url: str, *pieces: bytes) -> bytes:
    """The status line the server answers `pieces`, sent one after the other (b"" if none)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        return (await reader.readline()).strip()
    except ConnectionError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def head(filler: int, method: bytes = b"GET", path: bytes = b"/healthz") -> bytes:
    return method + b" " + path + b" HTTP/1.1\r\nHost: test\r\nX-Filler: " + b"a" * filler


async def test_a_head_longer_than_the_limit_is_refused_however_it_arrives(
    tmp_path: Path,
) -> None:
    limit = 16 * 1024
    body = b'{"n": "' + b"b" * 100_000 + b'"}'
    post = head(100, b"POST", b"/echo") + (
        b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    async with serving(build(tmp_path)) as url:
        assert await answer_to(url, head(limit - 200) + b"\r\n\r\n") == b"HTTP/1.1 200 OK"
        assert await answer_to(url, post + body) == b"HTTP/1.1 200 OK"
        too_large = b"HTTP/1.1 431 Request Header Fields Too Large"
        assert await answer_to(url, head(limit) + b"\r\n\r\n") == too_large
        assert await answer_to(url, head(100_000) + b"\r\n\r\n") == too_large
        pieces = [head(4000)] + [b"a" * 4000] * 5
        assert await answer_to(url, *pieces) == too_large
        assert await answer_to(url, b"\r\n\r\n", *pieces) == too_large
