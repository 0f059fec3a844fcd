"""The SSE load client of `notifications.py`: thousands of subscribers in a few processes.

Each client process runs uvloop (else asyncio) with one `asyncio.Protocol` per connection that
reads the response head, then only looks for `data:` lines holding `{"seq": i, "t": ns}`: per
receipt it keeps the latency from `t` (the publish time) to the moment its bytes reached the loop
(`time.time_ns()`), once per (subscriber, message). Connections open at a bounded rate, each
with a bounded number of attempts, within a deadline. While messages flow, each process measures
its own loop lag (a 20 ms timer's overshoot) and reports its receipts every 100 ms.

Imported by the script beside it; the leading underscore keeps `make bench` from running it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import multiprocessing
import resource
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_pipes
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess


@dataclass(frozen=True)
class ClientSpec:
    """What one client process does: `subscribers` connections to 127.0.0.1:`port`."""

    port: int
    request: bytes
    subscribers: int
    messages: int
    connect_rate: float
    retries: int
    connect_seconds: float
    head_timeout: float = 10.0
    in_flight: int = 256


class Subscriber(asyncio.Protocol):
    """One SSE connection: its response head, then only `data:` lines."""

    __slots__ = ("answered", "base", "client", "head", "live", "tail", "transport")

    def __init__(self, client: Client, base: int) -> None:
        self.client, self.base = client, base
        self.head = self.tail = b""
        self.live = False
        self.transport: asyncio.Transport | None = None
        self.answered: asyncio.Future[str | None] = client.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass
        self.transport.write(self.client.spec.request)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        if self.live:
            self.client.feed(self, data, now)
            return
        head = self.head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            self.head = head
            if len(head) > 65536:
                self.refuse("a response head over 64 KiB")
            return
        status = head[: head.find(b"\r\n")]
        if not status.startswith(b"HTTP/1.1 200"):
            self.refuse(status.decode(errors="replace"))
            return
        self.live, self.head = True, b""
        self.answered.set_result(None)
        if len(head) > end + 4:
            self.client.feed(self, head[end + 4 :], now)

    def refuse(self, why: str) -> None:
        if not self.answered.done():
            self.answered.set_result(why)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_result(f"closed before answering ({exc or 'EOF'})")
        elif self.live and not self.client.stopping:
            self.client.dropped += 1


class Client:
    """One client process's subscribers, their receipts, and its talk with the parent."""

    def __init__(self, spec: ClientSpec, pipe: Connection) -> None:
        import orjson

        self.loads = orjson.loads
        self.spec, self.pipe = spec, pipe
        self.loop = asyncio.get_running_loop()
        self.live: list[Subscriber] = []
        self.failures: collections.Counter[str] = collections.Counter()
        self.seen = bytearray(spec.subscribers * spec.messages)
        self.latencies_us = array("q")
        self.slowest_us = array("q", bytes(8 * spec.messages))  # per message
        self.receipts = self.duplicates = self.parse_errors = self.other = self.dropped = 0
        self.last_ns = 0
        self.stopping = False

    def feed(self, sub: Subscriber, data: bytes, now: int) -> None:
        buffer = sub.tail + data if sub.tail else data
        end = buffer.rfind(b"\n")
        if end < 0:
            sub.tail = buffer
            return
        sub.tail = buffer[end + 1 :]
        start = 0
        while (at := buffer.find(b"data:", start, end)) >= 0:
            stop = buffer.find(b"\n", at, end + 1)
            start = stop + 1
            if at and buffer[at - 1] != 10:  # not at the start of a line
                continue
            try:
                found = self.loads(buffer[at + 5 : stop])
                seq, published = found["seq"], found["t"]
            except (ValueError, KeyError, TypeError):
                self.parse_errors += 1
                continue
            if not 0 <= seq < self.spec.messages:
                self.other += 1
                continue
            slot = sub.base + seq
            if self.seen[slot]:
                self.duplicates += 1
                continue
            self.seen[slot] = 1
            self.receipts += 1
            latency = (now - published) // 1000
            self.latencies_us.append(latency)
            if latency > self.slowest_us[seq]:
                self.slowest_us[seq] = latency
            self.last_ns = now

    async def open(self, index: int, slots: asyncio.Semaphore) -> None:
        try:
            for attempt in range(self.spec.retries + 1):
                if attempt:
                    await asyncio.sleep(min(0.25 * 2**attempt, 4.0))
                sub: Subscriber | None = None
                try:
                    async with asyncio.timeout(self.spec.head_timeout):
                        _, sub = await self.loop.create_connection(
                            lambda: Subscriber(self, index * self.spec.messages),
                            "127.0.0.1",
                            self.spec.port,
                        )
                        why = await sub.answered
                except (OSError, TimeoutError) as exc:
                    why = f"{type(exc).__name__}: {exc}"
                    if sub is not None:
                        sub.refuse(why)
                if why is None:
                    assert sub is not None
                    self.live.append(sub)
                    return
                self.failures[why] += 1
        finally:
            slots.release()

    async def connect_all(self) -> None:
        slots = asyncio.Semaphore(self.spec.in_flight)
        tasks = set()
        started = self.loop.time()
        try:
            for index in range(self.spec.subscribers):
                due = started + index / self.spec.connect_rate
                if (wait := due - self.loop.time()) > 0:
                    await asyncio.sleep(wait)
                await slots.acquire()
                task = asyncio.create_task(self.open(index, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def run(self) -> None:
        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connect_all(), self.spec.connect_seconds)
        failed = self.spec.subscribers - len(self.live)
        if failed > sum(self.failures.values()):
            self.failures["connect deadline passed"] += failed - sum(self.failures.values())
        elapsed = time.monotonic() - started
        self.pipe.send(("connected", len(self.live), dict(self.failures), elapsed))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime
        lags: list[float] = []
        tick = 0.02
        while not self.pipe.poll():  # until "stop"
            before = self.loop.time()
            await asyncio.sleep(tick)
            lags.append(self.loop.time() - before - tick)
            if len(lags) % 5 == 0:
                self.pipe.send(("progress", self.receipts))
        self.pipe.recv()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        lags.sort()
        self.pipe.send(
            (
                "result",
                {
                    "latencies_us": self.latencies_us,
                    "slowest_us": self.slowest_us,
                    "duplicates": self.duplicates,
                    "parse_errors": self.parse_errors,
                    "other": self.other,
                    "dropped": self.dropped,
                    "last_ns": self.last_ns,
                    "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu,
                    "lag_p99_ms": lags[int(len(lags) * 0.99)] * 1000 if lags else 0.0,
                    "lag_max_ms": lags[-1] * 1000 if lags else 0.0,
                },
            )
        )
        self.stopping = True
        for sub in self.live:
            if sub.transport is not None:
                sub.transport.abort()


def client_process(spec: ClientSpec, pipe: Connection, open_files: int) -> None:
    """The body of a client process: connect, report, keep receipts until "stop", send them."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    gc.disable()  # what the client makes, refcounting frees: no collector pauses in the figures

    async def main() -> None:
        await Client(spec, pipe).run()

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


@dataclass
class Receipts:
    """What every client process received, merged."""

    connected: int = 0
    connect_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    connect_seconds: float = 0.0
    latencies_us: array[int] = field(default_factory=lambda: array("q"))
    slowest_us: list[int] = field(default_factory=list)
    duplicates: int = 0
    parse_errors: int = 0
    other: int = 0
    """`data:` lines of a message outside 0..messages-1 (the check message a peer may replay)."""
    dropped: int = 0
    last_ns: int = 0
    cpu_seconds: float = 0.0
    lag_p99_ms: float = 0.0
    lag_max_ms: float = 0.0


def spread(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class LoadClients:
    """`processes` client processes sharing `subscribers` connections, driven from the parent."""

    def __init__(
        self,
        port: int,
        request: bytes,
        subscribers: int,
        messages: int,
        *,
        processes: int,
        connect_rate: float,
        retries: int,
        connect_seconds: float,
    ) -> None:
        self.pipes: list[Connection] = []
        self.workers: list[BaseProcess] = []
        self.progress = [0] * processes
        self.connect_seconds = connect_seconds
        self.messages = messages
        context = multiprocessing.get_context("spawn")
        for share in spread(subscribers, processes):
            mine, theirs = context.Pipe()
            spec = ClientSpec(
                port, request, share, messages, connect_rate / processes, retries, connect_seconds
            )
            worker = context.Process(target=client_process, args=(spec, theirs, share + 1024))
            worker.start()
            theirs.close()
            self.pipes.append(mine)
            self.workers.append(worker)
        self.receipts = Receipts()

    def __enter__(self) -> LoadClients:
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.join(timeout=10 if exc[0] is None else 0)
            if worker.is_alive():
                worker.terminate()
                worker.join()

    def connected(self) -> Receipts:
        """Waits until every process has opened its connections (or given up on some)."""
        for live, failures, seconds in self._next("connected", self.connect_seconds + 30):
            self.receipts.connected += live
            self.receipts.connect_failures.update(failures)
            self.receipts.connect_seconds = max(self.receipts.connect_seconds, seconds)
        return self.receipts

    def poll(self, timeout: float) -> int:
        """Receipts so far, as the processes last reported them (waiting up to `timeout`)."""
        for pipe in cast("list[Connection]", wait_pipes(self.pipes, max(0.0, timeout))):
            while pipe.poll():
                try:
                    kind, *payload = pipe.recv()
                except EOFError:
                    raise RuntimeError("a client process ended early") from None
                if kind == "progress":
                    self.progress[self.pipes.index(pipe)] = payload[0]
        return sum(self.progress)

    def stop(self) -> Receipts:
        """Stops every process, merging what they received."""
        for pipe in self.pipes:
            pipe.send("stop")
        merged = self.receipts
        results = [payload[0] for payload in self._next("result", 60)]
        for result in results:
            merged.latencies_us.extend(result["latencies_us"])
            for name in ("duplicates", "parse_errors", "other", "dropped", "cpu_seconds"):
                setattr(merged, name, getattr(merged, name) + result[name])
        merged.slowest_us = [
            max(result["slowest_us"][seq] for result in results) for seq in range(self.messages)
        ]
        merged.last_ns = max(result["last_ns"] for result in results)
        merged.lag_p99_ms = max(result["lag_p99_ms"] for result in results)
        merged.lag_max_ms = max(result["lag_max_ms"] for result in results)
        return merged

    def _next(self, wanted: str, timeout: float) -> list[Any]:
        """The next `wanted` message of every process, within `timeout` seconds."""
        until = time.monotonic() + timeout
        found: dict[int, Any] = {}
        while len(found) < len(self.pipes):
            waiting = [pipe for i, pipe in enumerate(self.pipes) if i not in found]
            left = max(0.0, until - time.monotonic())
            ready = cast("list[Connection]", wait_pipes(waiting, left))
            if not ready and time.monotonic() >= until:
                raise RuntimeError(f"{len(waiting)} client process(es) sent no {wanted!r} in time")
            for pipe in ready:
                try:
                    kind, *payload = pipe.recv()
                except EOFError:
                    raise RuntimeError("a client process ended early") from None
                if kind == wanted:
                    found[self.pipes.index(pipe)] = payload
        return [found[i] for i in range(len(self.pipes))]
