"""What the fault tests share: a service as its own process, load that records every answer, and
the three things every fault must show.

1. Nothing acknowledged is lost: every write that got a 2xx is there afterwards.
2. While the fault lasts, a request that fails is a clean 503 problem with `Retry-After`,
   never a 500 and never a hang past the service's timeouts.
3. The service is ready again within 30 s of its dependency's return.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from outrigger.testing import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

OUTRIGGER = str(Path(sys.executable).with_name("outrigger"))
PROBLEM = "application/problem+json"
READY_WITHIN_SECONDS = 30.0
# The longest a request may take during a fault: the pool's wait (5 s) or Redis's timeout (2 s),
# with room for a loaded machine. A request that takes longer hangs.
LONGEST_ANSWER_SECONDS = 7.0


class Service:
    """`outrigger serve SERVICE` on a free port, logging to a file; started again at will."""

    def __init__(self, name: str, env: dict[str, str], folder: Path) -> None:
        self.name = name
        self.settings = dict(env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.folder = folder
        self.log_path = folder / f"{name}-{self.port}.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("OUTRIGGER_", "OTEL_"))}
        self.env = {
            **clean,
            "OUTRIGGER_HOST": "127.0.0.1",
            "OUTRIGGER_PORT": str(self.port),
            "OUTRIGGER_DATA_DIR": str(folder / "data"),
            "OUTRIGGER_SECRETS_DIR": str(folder / "no-secrets"),
            "OUTRIGGER_ACCESS_LOG": "errors",
            "OUTRIGGER_SHUTDOWN_GRACE_SECONDS": "2",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def replica(self, folder: Path) -> Service:
        """Another process of the same service with the same settings, on a port of its own."""
        return Service(self.name, self.settings, folder)

    def start(self) -> None:
        if not self.running:
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [OUTRIGGER, "serve", self.name],
                    env=self.env,
                    cwd=self.folder,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, nothing."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    async def answers(self, path: str) -> int | None:
        """The status of GET `path`, or None while nothing listens."""
        if self.process is not None and self.process.poll() is not None:
            pytest.fail(f"{self.name} exited ({self.process.returncode}):\n{self.log()}")
        try:
            async with httpx.AsyncClient(base_url=self.url, timeout=3) as http:
                return (await http.get(path)).status_code
        except httpx.TransportError:
            return None

    async def ready(self, within: float = READY_WITHIN_SECONDS) -> float:
        """Waits until `/readyz` answers 200; returns how long that took."""
        started = time.monotonic()
        while await self.answers("/readyz") != 200:
            if time.monotonic() - started > within:
                pytest.fail(f"{self.name} was not ready within {within:g} s:\n{self.log()}")
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    async def serving(self, within: float = READY_WITHIN_SECONDS) -> None:
        """Waits until `/healthz` answers: the process runs and serves, ready or not."""
        started = time.monotonic()
        while await self.answers("/healthz") != 200:
            if time.monotonic() - started > within:
                pytest.fail(f"{self.name} did not serve within {within:g} s:\n{self.log()}")
            await asyncio.sleep(0.1)


@contextlib.contextmanager
def two_replicas(name: str, env: dict[str, str], folder: Path) -> Iterator[tuple[Service, Service]]:
    """Two processes of one service with the same settings, started; stopped afterwards."""
    first = Service(name, env, folder)
    second = first.replica(folder)
    first.start()
    second.start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


@dataclass
class Answer:
    """One request of the load: what came back, and how long it took."""

    status: int | None  # None: no HTTP answer (the connection failed)
    seconds: float
    started: float = 0.0  # time.monotonic() when the request was sent
    retry_after: str | None = None
    content_type: str | None = None
    problem_type: str | None = None
    error: str | None = None


@dataclass
class Load:
    """`clients` concurrent clients, each writing one thing at a time with `write` until
    stopped; every answer is kept, and what was acknowledged (a 2xx) is remembered."""

    write: Callable[[httpx.AsyncClient, str, int], Awaitable[tuple[httpx.Response, Any]]]
    base_url: str
    headers: dict[str, str]
    clients: int = 4
    answers: list[Answer] = field(default_factory=list)
    acknowledged: list[Any] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(self.clients)]

    async def answers_sent_after(self, moment: float, *, count: int, within: float) -> list[Answer]:
        """The first `count` answers to requests sent after `moment` (`time.monotonic()`), once
        they came (at most `within` s). Requests already under way at `moment` are left out:
        they started before whatever happened then."""

        def sent_after() -> list[Answer]:
            return [answer for answer in self.answers if answer.started > moment][:count]

        async with asyncio.timeout(within):
            while len(sent_after()) < count:  # noqa: ASYNC110 (the clients append)
                await asyncio.sleep(0.05)
        return sent_after()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _client(self, number: int) -> None:
        name = f"w{number}-{uuid.uuid4().hex[:8]}"
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=30
        ) as http:
            sequence = 0
            while not self._stop.is_set():
                sequence += 1
                started = time.monotonic()
                try:
                    response, written = await self.write(http, name, sequence)
                except httpx.TransportError as exc:
                    elapsed = time.monotonic() - started
                    self.answers.append(Answer(None, elapsed, started, error=repr(exc)))
                    await asyncio.sleep(0.1)
                    continue
                answer = Answer(
                    response.status_code,
                    time.monotonic() - started,
                    started,
                    response.headers.get("retry-after"),
                    response.headers.get("content-type"),
                )
                if answer.content_type == PROBLEM:
                    answer.problem_type = response.json().get("type")
                self.answers.append(answer)
                if response.is_success:
                    self.acknowledged.append(written)
                    await asyncio.sleep(0.01)
                else:
                    await asyncio.sleep(0.1)


def assert_clean(answers: list[Answer], *, connection_errors: bool = False) -> None:
    """Every answer is a success or a 503 problem with Retry-After, in bounded time."""
    assert answers, "no request was made"
    for answer in answers:
        assert answer.seconds < LONGEST_ANSWER_SECONDS, f"a request hung: {answer}"
        if answer.status is None:
            assert connection_errors, f"no HTTP answer: {answer}"
        elif answer.status >= 300:
            assert answer.status == 503, answer
            assert answer.content_type == PROBLEM, answer
            assert answer.retry_after == "1", answer


def count(answers: list[Answer], status: int) -> int:
    return sum(1 for answer in answers if answer.status == status)


@contextlib.asynccontextmanager
async def loaded(load: Load) -> AsyncIterator[Load]:
    load.start()
    try:
        yield load
    finally:
        await load.stop()
