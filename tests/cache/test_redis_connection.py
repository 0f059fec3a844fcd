"""The Redis connection under the store: single-key commands pipelined per loop turn, each
caller with its own reply or its own clear error; scripts Redis forgot loaded again."""

from __future__ import annotations

import asyncio
import time

import pytest

from outrigger.errors import CacheError
from outrigger.testing import unique
from services.cache.adapters.redis import RedisCacheStore
from services.cache.adapters.redis_connection import BatchedConnection
from tests.cache.http_support import forget
from tests.cache.support import write


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


@pytest.mark.redis
async def test_a_failing_command_fails_only_its_caller_and_a_new_script_is_loaded(
    redis_url: str,
) -> None:
    connection = BatchedConnection(redis_url)
    never_seen = connection.script(f"-- {unique('script')}\nreturn ARGV[1]")
    failing = connection.script("return redis.error_reply('ERR refused on purpose')")
    try:
        results = await asyncio.gather(
            *(connection.call(never_seen, [], [f"a{i}"]) for i in range(5)),
            connection.call(failing, []),
            *(connection.call(never_seen, [], [f"b{i}"]) for i in range(5)),
            return_exceptions=True,
        )
    finally:
        await connection.close()
    assert results[:5] == [f"a{i}".encode() for i in range(5)]
    assert results[6:] == [f"b{i}".encode() for i in range(5)]
    refused = results[5]
    assert isinstance(refused, CacheError)
    assert "refused the command: refused on purpose" in refused.detail


@pytest.mark.redis
async def test_a_caller_that_goes_away_leaves_the_others_their_replies(redis_url: str) -> None:
    connection = BatchedConnection(redis_url)
    echo = connection.script("return ARGV[1]")
    try:
        calls = [asyncio.ensure_future(connection.call(echo, [], [str(i)])) for i in range(10)]
        calls[3].cancel()
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await connection.close()
    assert isinstance(results[3], asyncio.CancelledError)
    assert [r for i, r in enumerate(results) if i != 3] == [
        str(i).encode() for i in range(10) if i != 3
    ]


async def test_a_server_that_never_answers_times_out_as_a_cache_error() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = BatchedConnection(f"redis://127.0.0.1:{port}/0", timeout_seconds=0.3)
    read = connection.script("return 1")
    try:
        started = time.monotonic()
        failures = await asyncio.gather(
            *(connection.call(read, [f"k{i}"]) for i in range(10)), return_exceptions=True
        )
        assert time.monotonic() - started < 2.0
    finally:
        await connection.close()
        server.close()
        await server.wait_closed()
    assert all(isinstance(failure, CacheError) for failure in failures)
    assert "did not answer within 0.3 s" in str(failures[0])


async def test_an_unreachable_server_is_a_cache_error_at_once() -> None:
    connection = BatchedConnection("redis://127.0.0.1:1/0", timeout_seconds=1)
    read = connection.script("return 1")
    try:
        with pytest.raises(CacheError, match=r"Redis at 127\.0\.0\.1:1/0 is unreachable"):
            await connection.call(read, ["k"])
    finally:
        await connection.close()
