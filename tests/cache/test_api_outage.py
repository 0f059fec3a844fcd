"""Redis going away under the running service (a private Redis, which the test stops and starts):
a clear 503 problem while down, recovery after."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from outrigger.testing import unique
from tests.cache.http_support import PROBLEM, cache_settings, running

if TYPE_CHECKING:
    from outrigger.testing.servers import PrivateRedis


async def test_while_redis_is_down_every_route_answers_503_then_recovers(
    redis_server: PrivateRedis,
) -> None:
    settings = cache_settings(redis_server.url, cache_redis_timeout_seconds=1.0)
    ns = unique("ns")
    url = f"/v1/cache/{ns}/k"
    async with running(settings) as service:
        version = (await service.http.put(url, content=b"before")).json()["version"]
        assert (await service.http.get(url)).status_code == 200
        await asyncio.to_thread(redis_server.stop)
        down = [
            await service.http.get(url),
            await service.http.put(url, content=b"during"),
            await service.http.post(f"/v1/cache/{ns}:mget", json={"keys": ["k"]}),
            await service.http.post(f"/v1/locks/{unique('r')}", json={"ttl_ms": 100}),
        ]
        ready = await service.http.get("/readyz")
        await asyncio.to_thread(redis_server.start)
        for response in down:
            assert response.status_code == 503, response.request.url
            assert response.headers["content-type"] == PROBLEM
            assert response.headers["retry-after"] == "1"
            problem = response.json()
            assert problem["type"].endswith("/cache-unavailable")
            assert f"Redis at 127.0.0.1:{redis_server.port}/0 is unreachable" in problem["detail"]
            assert "retry shortly" in problem["detail"]
        assert ready.status_code == 503
        assert ready.json()["checks"]["cache"] != "ok"

        deadline = time.monotonic() + 30
        while (await service.http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "the cache did not come back within 30 s"
            await asyncio.sleep(0.2)
        # Redis restarted empty (the private server keeps nothing): a miss, not an error
        assert (await service.http.get(url)).status_code == 404
        after = await service.http.put(url, content=b"after")
        assert after.status_code == 200
        assert after.json()["version"] != version
        read = await service.http.get(url)
        assert (read.status_code, read.content) == (200, b"after")
