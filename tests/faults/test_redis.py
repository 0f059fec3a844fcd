"""Redis restarted and paused under the cache while clients write entries."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import httpx

from outrigger.testing import unique
from tests.faults.support import Load, Service, assert_clean, count, loaded

if TYPE_CHECKING:
    from pathlib import Path

    from outrigger.testing.servers import PrivateRedis

Written = tuple[str, bytes]  # entry path, value


def put_load(cache: Service, headers: dict[str, str], namespace: str) -> Load:
    """Clients each writing a new entry at a time, with a value of its own."""

    async def put(http: httpx.AsyncClient, client: str, n: int) -> tuple[httpx.Response, Any]:
        path, value = f"/v1/cache/{namespace}/{client}-{n}", uuid.uuid4().bytes
        return await http.put(path, content=value), (path, value)

    return Load(put, cache.url, headers)


async def assert_kept(cache: Service, headers: dict[str, str], written: list[Written]) -> None:
    """Every acknowledged entry reads back with the value written."""
    assert written, "nothing was acknowledged"
    async with httpx.AsyncClient(base_url=cache.url, headers=headers, timeout=10) as http:
        for path, value in written:
            read = await http.get(path)
            assert (read.status_code, read.content) == (200, value), f"lost {path}"


async def test_a_redis_restart_loses_no_acknowledged_entry_and_a_new_replica_starts(
    cache: Service, durable_redis: PrivateRedis, headers: dict[str, str], tmp_path: Path
) -> None:
    replica = cache.replica(tmp_path)  # a cache that starts while Redis is down
    try:
        async with loaded(put_load(cache, headers, unique("restart"))) as load:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(durable_redis.stop)
            replica.start()
            await replica.serving()
            down = await replica.answers("/readyz"), await cache.answers("/healthz")
            await asyncio.to_thread(durable_redis.start)
            assert await cache.ready() < 30
            assert await replica.ready() < 30
            await asyncio.sleep(0.5)
        assert down == (503, 200)
        assert_clean(load.answers)
        assert count(load.answers, 503) > 0
        assert load.answers[-1].status == 200
        await assert_kept(cache, headers, load.acknowledged)
    finally:
        replica.stop()


async def test_a_paused_redis_is_a_503_after_the_timeout_and_loses_nothing(
    cache: Service, durable_redis: PrivateRedis, headers: dict[str, str]
) -> None:
    async with loaded(put_load(cache, headers, unique("pause"))) as load:
        await asyncio.sleep(0.5)
        durable_redis.pause()
        await asyncio.sleep(3)  # longer than the cache's Redis timeout (2 s)
        async with httpx.AsyncClient(base_url=cache.url, timeout=5) as http:
            ready = await http.get("/readyz")
        durable_redis.resume()
        assert await cache.ready() < 30
        await asyncio.sleep(0.5)
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "1"
    assert_clean(load.answers)
    assert count(load.answers, 503) > 0
    assert load.answers[-1].status == 200
    await assert_kept(cache, headers, load.acknowledged)
