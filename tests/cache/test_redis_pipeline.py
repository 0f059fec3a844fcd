"""The pipelined Redis connection under the hot paths: replies in order, whole, or a clear error."""

from __future__ import annotations

import asyncio
import time

import pytest

from outrigger.errors import CacheError
from outrigger.testing import unique
from services.cache.adapters.redis import RedisCacheStore
from services.cache.adapters.redis_pipeline import PipelinedConnection, ReplyError, encode, parse
from tests.cache.http_support import forget
from tests.cache.support import write

REPLY = b"*3\r\n*2\r\n$5\r\nhello\r\n:42\r\n$-1\r\n+OK\r\n"


def test_a_reply_is_parsed_only_once_it_is_complete() -> None:
    for cut in range(len(REPLY)):
        assert parse(bytearray(REPLY[:cut]), 0) is None, cut
    assert parse(bytearray(REPLY), 0) == ([[b"hello", 42], None, b"OK"], len(REPLY))
    error, end = parse(bytearray(b"-NOSCRIPT No matching script\r\n"), 0) or (None, 0)
    assert isinstance(error, ReplyError)
    assert str(error) == "NOSCRIPT No matching script"
    assert end == 30


def test_commands_are_resp_arrays_of_bulk_strings() -> None:
    assert encode(("GET", b"k\r\n", 7)) == b"*3\r\n$3\r\nGET\r\n$3\r\nk\r\n\r\n$1\r\n7\r\n"


@pytest.mark.redis
async def test_concurrent_reads_each_get_their_own_entry_even_a_large_one(redis_url: str) -> None:
    prefix, ns = unique("oc-pipe"), unique("ns")
    store = RedisCacheStore(redis_url, key_prefix=prefix)
    try:
        big = bytes(range(256)) * 4096  # 1 MiB: arrives in many chunks
        await store.put(ns, write("big", big))
        await store.mset(ns, [write(f"k{i}", f"value {i}".encode()) for i in range(200)])
        keys = ["big", *(f"k{i}" for i in range(200)), "missing"]
        found = await asyncio.gather(*(store.get(ns, key) for key in keys))
        assert found[0] is not None
        assert found[0].value == big
        assert [entry.value for entry in found[1:-1] if entry] == [
            f"value {i}".encode() for i in range(200)
        ]
        assert found[-1] is None
    finally:
        await store.close()
        await forget(redis_url, prefix)


async def test_a_server_that_never_answers_times_out_as_a_cache_error() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = PipelinedConnection(f"redis://127.0.0.1:{port}/0", "here", timeout_seconds=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(CacheError, match=r"Redis at here did not answer within 0\.3 s"):
            await asyncio.gather(*(connection.call("GET", f"k{i}") for i in range(10)))
        assert time.monotonic() - started < 1.0
    finally:
        await connection.close()
        server.close()
        await server.wait_closed()


async def test_an_unreachable_server_is_a_cache_error_at_once() -> None:
    connection = PipelinedConnection("redis://127.0.0.1:1/0", "127.0.0.1:1", timeout_seconds=1)
    with pytest.raises(CacheError, match=r"Redis at 127\.0\.0\.1:1 is unreachable"):
        await connection.call("GET", "k")
    await connection.close()
