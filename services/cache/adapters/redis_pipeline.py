"""One pipelined Redis connection for the hot reads: every concurrent read shares one socket.

A read through redis-py's pool costs a pool checkout, a command object, a retry wrapper and a
pure-Python RESP3 parser: about 300 µs of CPU per GET at 50 concurrent requests, most of the
cache's whole budget. Here commands are queued as they come, written together once per event
loop turn, and their replies matched to them in order (RESP2), which Redis guarantees on one
connection; a read costs one future and a few slices.

Failure semantics match `RedisConnection`: every failure is a `CacheError` naming the server. A
connection that breaks fails the commands in flight, and the next command opens a new one; a
command that failed because its connection broke is retried once on a fresh one (only reads
come here, so a retry is harmless). A watchdog aborts the connection when the oldest command
has waited longer than the timeout.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from typing import Any, cast

from redis.asyncio.connection import SSLConnection, parse_url

from outrigger.errors import CacheError

CRLF = b"\r\n"


class ReplyError(Exception):
    """Redis answered a command with an error reply (`-ERR …`, `-NOSCRIPT …`)."""


class ConnectionBroken(Exception):
    """The connection closed or was aborted before the reply came."""


def encode(args: tuple[bytes | str | int, ...]) -> bytes:
    """A command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def parse(buffer: bytearray, pos: int) -> tuple[Any, int] | None:
    """One reply starting at `pos` and the position after it, or None if it is incomplete."""
    end = buffer.find(CRLF, pos)
    if end < 0:
        return None
    kind, line, after = buffer[pos], bytes(buffer[pos + 1 : end]), end + 2
    if kind == 36:  # $ bulk string
        size = int(line)
        if size < 0:
            return None, after
        if len(buffer) < after + size + 2:
            return None
        return bytes(buffer[after : after + size]), after + size + 2
    if kind == 42:  # * array
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            found = parse(buffer, after)
            if found is None:
                return None
            item, after = found
            items.append(item)
        return items, after
    if kind == 58:  # : integer
        return int(line), after
    if kind == 43:  # + simple string
        return line, after
    return ReplyError(line.decode(errors="replace")), after  # - error


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self.pending: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.outgoing: list[bytes] = []
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.broken: BaseException | None = None
        self.loop = asyncio.get_running_loop()
        self.watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass

    def send(self, command: bytes) -> asyncio.Future[Any]:
        if self.broken is not None:
            raise ConnectionBroken(str(self.broken))
        future = self.loop.create_future()
        if not self.outgoing:
            self.loop.call_soon(self._flush)
        self.outgoing.append(command)
        self.pending.append((future, time.monotonic()))
        if self.watchdog is None:
            self.watchdog = self.loop.call_later(self.timeout_seconds / 4, self._watch)
        return future

    def _flush(self) -> None:
        if self.transport is not None and self.outgoing and self.broken is None:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def _watch(self) -> None:
        self.watchdog = None
        if not self.pending or self.broken is not None:
            return
        if time.monotonic() - self.pending[0][1] > self.timeout_seconds:
            self._fail(TimeoutError(f"no reply within {self.timeout_seconds:g} s"))
            return
        self.watchdog = self.loop.call_later(self.timeout_seconds / 4, self._watch)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        pos = 0
        while self.pending:
            found = parse(buffer, pos)
            if found is None:
                break
            reply, pos = found
            future, _ = self.pending.popleft()
            if not future.done():
                future.set_result(reply)
        del buffer[:pos]

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionBroken("the server closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        if self.broken is None:
            self.broken = exc
        if self.transport is not None:
            self.transport.abort()
        while self.pending:
            future, _ = self.pending.popleft()
            if not future.done():
                future.set_exception(ConnectionBroken(str(self.broken)))


class PipelinedConnection:
    """Sends commands over one shared, lazily (re)opened connection to the server at `url`."""

    def __init__(self, url: str, where: str, *, timeout_seconds: float = 2.0) -> None:
        self.where = where
        self.timeout_seconds = timeout_seconds
        self._options = parse_url(url)
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None

    async def call(self, *args: bytes | str | int) -> Any:
        """The reply to one command; a `ReplyError` reply is raised as a `CacheError`."""
        command = encode(args)
        for attempt in (1, 2):
            protocol = self._protocol
            if protocol is None or protocol.broken is not None:
                protocol = await self._connection()
            try:
                reply = await protocol.send(command)
            except ConnectionBroken as exc:
                if attempt == 2 or isinstance(protocol.broken, TimeoutError):
                    raise self._unavailable(protocol.broken or exc) from exc
                continue
            if isinstance(reply, ReplyError):
                raise reply
            return reply
        raise AssertionError("unreachable")

    def _unavailable(self, cause: BaseException) -> CacheError:
        if isinstance(cause, TimeoutError):
            return CacheError(
                f"Redis at {self.where} did not answer within {self.timeout_seconds:g} s; "
                "the cache is unavailable, retry shortly"
            )
        return CacheError(
            f"Redis at {self.where} is unreachable ({cause}); the cache is unavailable until "
            "it is back, retry shortly"
        )

    async def _connection(self) -> _Protocol:
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        except ReplyError as exc:
            raise CacheError(f"Redis at {self.where} refused the connection: {exc}") from exc
        except (OSError, TimeoutError, ConnectionBroken) as exc:
            raise self._unavailable(exc) from exc

    async def _connect(self) -> _Protocol:
        options, loop = self._options, asyncio.get_running_loop()

        def factory() -> _Protocol:
            return _Protocol(self.timeout_seconds)

        async with asyncio.timeout(self.timeout_seconds):
            if "path" in options:
                _, protocol = await loop.create_unix_connection(factory, options["path"])
            else:
                tls = ssl.create_default_context()
                secure = options.get("connection_class") is SSLConnection
                _, protocol = await loop.create_connection(
                    factory, options["host"], options["port"], ssl=tls if secure else None
                )
            setup: list[tuple[str, ...]] = []
            if password := options.get("password"):
                user = options.get("username")
                setup.append(("AUTH", user, password) if user else ("AUTH", password))
            if db := options.get("db"):
                setup.append(("SELECT", str(db)))
            for reply in await asyncio.gather(*(protocol.send(encode(c)) for c in setup)):
                if isinstance(reply, ReplyError):
                    raise reply
        self._protocol = protocol
        return protocol

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.close()
