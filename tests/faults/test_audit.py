"""The audit service ingesting 10,000 records from RabbitMQ while it is killed (SIGKILL) and the
broker restarts: every record is stored exactly once, the tree verifies, and every record proves
its inclusion in a checkpoint issued after it."""

from __future__ import annotations

import asyncio
import base64
import os
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from outrigger.auth import TokenIssuer
from outrigger.bus import CloudEvent, connect_bus
from outrigger.errors import MessagingError
from outrigger.settings import Settings
from outrigger.testing import unique
from tests.audit import rfc9162
from tests.audit.api_support import opened
from tests.faults.conftest import SECRET
from tests.faults.support import Service

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from outrigger.testing.servers import PrivatePostgres, PrivateRabbitMQ

RECORDS = 10_000
CHUNK = 250


@pytest.fixture(scope="session")
def _audit(
    tmp_path_factory: pytest.TempPathFactory,
    fault_database: str,
    _rabbitmq_server: PrivateRabbitMQ,
) -> Iterator[Service]:
    env = {
        "OUTRIGGER_DATABASE_URL": fault_database,
        "OUTRIGGER_AMQP_URL": _rabbitmq_server.url,
        "OUTRIGGER_JWT_SECRET": SECRET,
        "OUTRIGGER_AUDIT_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        "OUTRIGGER_AUDIT_CHECKPOINT_SECONDS": "0.5",
    }
    service = Service("audit", env, tmp_path_factory.mktemp("audit"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
async def audit(
    _audit: Service, postgres_server: PrivatePostgres, rabbitmq_server: PrivateRabbitMQ
) -> Service:
    """`outrigger serve audit` on the private PostgreSQL and RabbitMQ, ready."""
    _audit.start()
    await _audit.ready()
    return _audit


@pytest.fixture
async def http(audit: Service) -> AsyncIterator[httpx.AsyncClient]:
    token = TokenIssuer.from_settings(Settings(jwt_secret=SECRET)).mint(
        "faults", ["audit:read", "audit:write"], 3600
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=audit.url, headers=headers, timeout=30) as client:
        yield client


async def _publish(url: str, events: list[CloudEvent]) -> None:
    """Publishes every event at least once, sending a chunk again when the broker failed it."""
    bus = connect_bus(url, source="tests.faults")
    await bus.start()
    try:
        for start in range(0, len(events), CHUNK):
            chunk = [("faults.record", event) for event in events[start : start + CHUNK]]
            while True:
                try:
                    await bus.publish_many("outrigger.audit", chunk)
                    break
                except MessagingError:
                    await asyncio.sleep(0.5)
            await asyncio.sleep(0.01)
    finally:
        await bus.close()


async def _size(http: httpx.AsyncClient, tenant: str) -> int:
    try:
        response = await http.get("/v1/verify", params={"tenant": tenant})
    except httpx.TransportError:
        return -1
    size: int = response.json()["tree_size"] if response.status_code == 200 else -1
    return size


async def _reach(http: httpx.AsyncClient, tenant: str, size: int, within: float = 120) -> None:
    """Returns once the tenant's tree has `size` records; fails after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while await _size(http, tenant) < size:
        assert asyncio.get_running_loop().time() < deadline, f"fewer than {size} records"
        await asyncio.sleep(0.1)


async def test_records_from_the_queue_survive_a_kill_and_a_broker_restart_exactly_once(
    audit: Service, rabbitmq_server: PrivateRabbitMQ, http: httpx.AsyncClient
) -> None:
    tenant = unique("faults")
    events = [
        CloudEvent.new(
            source="tests.faults",
            type="faults.record",
            data={"actor": "load", "action": "write", "resource": f"r/{n}", "tenant": tenant},
        )
        for n in range(RECORDS)
    ]
    publishing = asyncio.create_task(_publish(rabbitmq_server.url, events))
    await _reach(http, tenant, RECORDS // 5)
    audit.kill()
    await asyncio.sleep(0.5)
    audit.start()
    await audit.ready()
    await _reach(http, tenant, RECORDS // 2)
    rabbitmq_server.restart()
    await publishing
    await _reach(http, tenant, RECORDS)
    await asyncio.sleep(1.0)  # a redelivery, if any, would show now
    verified = (await http.get("/v1/verify", params={"tenant": tenant})).json()
    assert (verified["ok"], verified["tree_size"], verified["records_checked"]) == (
        True,
        RECORDS,
        RECORDS,
    ), verified["mismatch"]
    issued = await http.post("/v1/checkpoints", params={"tenant": tenant})
    _, size, root = opened(issued.json())
    assert size == RECORDS
    seen = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"tenant": tenant, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = (await http.get("/v1/records", params=params)).json()
        for record in page["records"][::97]:  # a sample of proofs; every id below
            proof = await http.get(
                "/v1/proofs/inclusion", params={"tenant": tenant, "index": record["index"]}
            )
            hashes = [bytes.fromhex(h) for h in proof.json()["hashes"]]
            leaf = bytes.fromhex(record["leaf_hash"])
            assert rfc9162.verify_inclusion(record["index"], size, leaf, hashes, root)
        seen |= {record["id"] for record in page["records"]}
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == {event.id for event in events}
