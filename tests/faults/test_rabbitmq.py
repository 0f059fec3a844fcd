"""RabbitMQ stopped and killed under the event store and the cache: both keep serving their API
(degraded, not unready), and once the broker is back the relay publishes every event appended
meanwhile and the cache's invalidations flow again."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from outrigger.testing import unique
from tests.faults.appends import append_load, assert_relayed, assert_stored, relayed
from tests.faults.support import READY_WITHIN_SECONDS, Service, assert_clean, count, loaded

if TYPE_CHECKING:
    from pathlib import Path

    from outrigger.testing.servers import PrivateRabbitMQ


async def _status(service: Service) -> str:
    async with httpx.AsyncClient(base_url=service.url, timeout=5) as http:
        response = await http.get("/readyz")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


async def _until_status(service: Service, status: str) -> float:
    started = time.monotonic()
    while await _status(service) != status:
        assert time.monotonic() - started < READY_WITHIN_SECONDS, f"{service.name} not {status}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def _gauge(service: Service) -> str:
    async with httpx.AsyncClient(base_url=service.url, timeout=5) as http:
        metrics = (await http.get("/metrics")).text
    [line] = [
        line
        for line in metrics.splitlines()
        if line.startswith("outrigger_dependency_up{") and 'dependency="bus"' in line
    ]
    return line.rsplit(" ", 1)[1]


async def _invalidated_after_an_append(
    cache: Service, event_store: Service, headers: dict[str, str]
) -> None:
    """A cache entry tagged with a stream goes when the stream gets an event (through the
    relay, the broker and the cache's consumer) within 30 s."""
    stream, ns = unique("tagged-"), unique("ns")
    entry = f"/v1/cache/{ns}/k"
    async with (
        httpx.AsyncClient(base_url=cache.url, headers=headers, timeout=5) as kept,
        httpx.AsyncClient(base_url=event_store.url, headers=headers, timeout=5) as events,
    ):
        put = await kept.put(entry, params={"tags": f"stream:{stream}"}, content=b"v")
        assert put.status_code == 200, put.text
        appended = await events.post(
            f"/v1/streams/{stream}/events", json={"events": [{"type": "Changed", "data": {}}]}
        )
        assert appended.status_code == 201, appended.text
        deadline = time.monotonic() + READY_WITHIN_SECONDS
        while (await kept.get(entry)).status_code != 404:
            assert time.monotonic() < deadline, "the entry was never invalidated"
            await asyncio.sleep(0.2)


async def _append(service: Service, headers: dict[str, str], stream: str) -> int:
    async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=5) as http:
        body = {"events": [{"type": "Appended", "data": {}}]}
        return (await http.post(f"/v1/streams/{stream}/events", json=body)).status_code


@pytest.mark.parametrize(("fault", "starting"), [("stop", "event-store"), ("kill", "cache")])
async def test_appends_go_on_through_a_broker_outage_and_are_all_relayed_after(
    fault: str,
    starting: str,
    event_store: Service,
    cache: Service,
    rabbitmq_server: PrivateRabbitMQ,
    headers: dict[str, str],
    tmp_path: Path,
) -> None:
    category = unique(f"mq{fault}")
    # a replica of one or the other that starts while the broker is down
    replica = (event_store if starting == "event-store" else cache).replica(tmp_path)
    try:
        async with relayed(rabbitmq_server.url, category) as ids:
            async with loaded(append_load(event_store, headers, category)) as load:
                await asyncio.sleep(0.5)
                if fault == "kill":  # the queues are minutes old in real life (see `settle`)
                    await asyncio.to_thread(rabbitmq_server.settle)
                await asyncio.to_thread(getattr(rabbitmq_server, fault))
                await _until_status(event_store, "degraded")
                await _until_status(cache, "degraded")
                gauge = await _gauge(event_store)
                replica.start()
                await replica.serving()
                replica_status = await _status(replica)
                if starting == "event-store":
                    assert await _append(replica, headers, f"{category}-replica") == 201
                await asyncio.to_thread(rabbitmq_server.start)
                for service in (event_store, cache, replica):
                    assert await _until_status(service, "ready") < READY_WITHIN_SECONDS
                await asyncio.sleep(0.5)
            await assert_relayed(ids, load.acknowledged)
        assert (gauge, replica_status) == ("0.0", "degraded")
        assert_clean(load.answers)
        assert count(load.answers, 201) == len(load.answers), "an append failed"
        await assert_stored(event_store, headers, category, load.acknowledged)
        await _invalidated_after_an_append(cache, event_store, headers)
        if starting == "cache":
            await _invalidated_after_an_append(replica, event_store, headers)
    finally:
        replica.stop()
