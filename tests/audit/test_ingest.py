"""Ingest from RabbitMQ: batches, duplicates acknowledged and dropped, malformed messages
dead-lettered with their reason, and the records the event store and the cache already send
(the kit's `AuditTrail`) arriving, provable and verifying. Each test has queues (and, but for
the last, an exchange) of its own, removed afterwards."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client import REGISTRY

from outrigger.bus import DEATH_REASON_HEADER, CloudEvent, connect_bus
from outrigger.testing import AuditInbox, bearer, unique
from outrigger.testing.broker import Declared
from services.cache.app import build_app as build_cache
from services.cache.settings import CacheSettings
from services.event_store.app import build_app as build_event_store
from services.event_store.settings import EventStoreSettings
from tests.audit import rfc9162
from tests.audit.api_support import SECRET, Api, eventually, opened, running, settings_for
from tests.databases import copy_sqlite

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from outrigger.bus import MessageBus

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def names(amqp_url: str) -> AsyncIterator[Declared]:
    """Queues and exchanges of one test, deleted from the broker afterwards."""
    names = Declared()
    yield names
    await names.remove(amqp_url)


@pytest.fixture
async def producer(amqp_url: str) -> AsyncIterator[MessageBus]:
    bus = connect_bus(amqp_url, source="tests.producer")
    await bus.start()
    yield bus
    await bus.close()


@pytest.fixture
async def ingesting(
    database: str, tmp_path: Path, amqp_url: str, names: Declared
) -> AsyncIterator[tuple[Api, str, str]]:
    """The audit app consuming a queue of its own, bound to an exchange of its own."""
    queue, exchange = names.queue("audit-records"), names.exchange("audit-exchange")
    settings = settings_for(
        database,
        tmp_path,
        amqp_url=amqp_url,
        audit_ingest_queue=queue,
        audit_ingest_exchange=exchange,
        audit_checkpoint_exchange=names.exchange("audit-exchange"),
        audit_checkpoint_seconds=0.2,
    )
    async with running(settings) as api:
        yield api, queue, exchange


def message(tenant: str, **data: Any) -> CloudEvent:
    record = {"actor": "svc", "action": "sync", "resource": "doc/1", "tenant": tenant, **data}
    return CloudEvent.new(source="tests.producer", type="doc.synced", data=record)


async def _size(api: Api, tenant: str) -> int:
    size: int = (await api.app.state.audit.log.head(tenant)).size
    return size


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _duplicates() -> float:
    return _sample("outrigger_audit_records_ingested_total", path="queue", result="duplicate")


async def test_a_burst_is_stored_in_batches_once_each_and_checkpointed(
    ingesting: tuple[Api, str, str], producer: MessageBus
) -> None:
    api, _, exchange = ingesting
    tenant, count = unique("t"), 1500
    batches_before = _sample("outrigger_audit_batch_size_count", path="queue")
    stored_before = _sample("outrigger_audit_records_ingested_total", path="queue", result="stored")
    events = [message(tenant, data={"n": n}) for n in range(count)]
    await producer.publish_many(exchange, [("tests.sync", event) for event in events])

    async def all_stored() -> bool:
        return await _size(api, tenant) == count

    await eventually(all_stored)
    stored = _sample("outrigger_audit_records_ingested_total", path="queue", result="stored")
    assert stored - stored_before == count
    batches = _sample("outrigger_audit_batch_size_count", path="queue") - batches_before
    assert batches <= count / 20, f"{batches} batches for {count} records"

    async def checkpointed() -> bool:
        latest = await api.http.get("/v1/checkpoints/latest", params={"tenant": tenant})
        return latest.status_code == 200 and latest.json()["tree_size"] == count

    await eventually(checkpointed)
    verified = (await api.http.get("/v1/verify", params={"tenant": tenant})).json()
    assert (verified["ok"], verified["records_checked"]) == (True, count)
    ids = set()
    cursor = None
    while True:
        params = {"tenant": tenant, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = (await api.http.get("/v1/records", params=params)).json()
        ids |= {r["id"] for r in page["records"]}
        if (cursor := page["next_cursor"]) is None:
            break
    assert ids == {event.id for event in events}


async def test_duplicates_are_acknowledged_and_dropped(
    ingesting: tuple[Api, str, str], producer: MessageBus
) -> None:
    api, _, exchange = ingesting
    tenant = unique("t")
    event = message(tenant)
    before = _duplicates()
    await producer.publish_many(exchange, [("tests.sync", event)] * 3)

    async def dropped(count: int) -> bool:
        return _duplicates() - before == count

    await eventually(lambda: dropped(2))
    await producer.publish(exchange, "tests.sync", event)  # long after: still one record
    await eventually(lambda: dropped(3))
    assert await _size(api, tenant) == 1
    got = (await api.http.get(f"/v1/records/{event.id}")).json()
    assert (got["index"], got["source"], got["type"]) == (0, "tests.producer", "doc.synced")


async def test_a_malformed_message_is_dead_lettered_with_its_reason_and_blocks_nothing(
    ingesting: tuple[Api, str, str], producer: MessageBus
) -> None:
    api, queue, exchange = ingesting
    tenant = unique("t")
    dead = AuditInbox()
    await producer.subscribe(f"{queue}.dlq", [], dead)
    not_json = CloudEvent.new(
        source="tests.producer", type="doc.synced", data=b"hello", datacontenttype="text/plain"
    )
    no_actor = CloudEvent.new(
        source="tests.producer", type="doc.synced", data={"action": "a", "resource": "r"}
    )
    bad_tenant = message("Not A Tenant")
    too_large = message(tenant, data={"blob": "x" * 70_000})
    good = [message(tenant, data={"n": n}) for n in range(3)]
    sent = [good[0], not_json, no_actor, good[1], bad_tenant, too_large, good[2]]
    await producer.publish_many(exchange, [("tests.sync", event) for event in sent])
    deliveries = await dead.wait(4, within=20)
    reasons = {d.event.id: d.headers[DEATH_REASON_HEADER] for d in deliveries}
    assert reasons[not_json.id] == "not an audit record: its data must be a JSON object, not bytes"
    assert reasons[no_actor.id] == "not an audit record: actor is missing"
    assert reasons[bad_tenant.id].startswith("not a valid audit record: tenant must be")
    assert "data must be at most" in reasons[too_large.id]

    async def good_stored() -> bool:
        return await _size(api, tenant) == 3

    await eventually(good_stored)


@pytest.fixture
async def platform(
    audit_sqlite_template: Path, tmp_path: Path, amqp_url: str, names: Declared
) -> AsyncIterator[tuple[Api, Any, Any]]:
    """The event store and the cache publishing their audit records on RabbitMQ, and the audit
    service consuming `outrigger.audit` (every record there, this test's among them)."""
    audit = settings_for(
        copy_sqlite(audit_sqlite_template, tmp_path),
        tmp_path,
        amqp_url=amqp_url,
        audit_ingest_queue=names.queue("audit-records"),
        audit_checkpoint_exchange=names.exchange("audit-exchange"),
        audit_checkpoint_seconds=0.2,
    )
    store_folder = tmp_path / "event-store"
    store_folder.mkdir()
    events = EventStoreSettings(
        jwt_secret=SECRET,
        data_dir=store_folder,
        database_url=copy_sqlite(audit_sqlite_template, store_folder),
        amqp_url=amqp_url,
        event_store_relay_enabled=False,
    )
    cache = CacheSettings(
        jwt_secret=SECRET, redis_url="memory://", amqp_url=amqp_url, cache_key_prefix=unique("c")
    )
    store_app = build_event_store(events)
    cache_app = build_cache(cache, invalidation_queue=names.queue("audit-records"))
    async with (
        running(audit) as api,
        store_app.router.lifespan_context(store_app),
        cache_app.router.lifespan_context(cache_app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=store_app),
            base_url="http://event-store",
            headers=bearer(events),
        ) as store,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=cache_app),
            base_url="http://cache",
            headers=bearer(cache),
        ) as cache_http,
    ):
        yield api, store, cache_http


async def test_the_records_of_the_event_store_and_the_cache_arrive_and_verify(
    platform: tuple[Api, Any, Any],
) -> None:
    api, store, cache = platform
    stream, namespace = unique("order"), unique("ns")
    changed = await store.put(f"/v1/streams/{stream}/metadata", json={"max_count": 3})
    assert changed.status_code == 200
    put = await cache.put(f"/v1/cache/{namespace}/k", content=b"v")
    assert put.status_code in (200, 201, 204)
    assert (await cache.delete(f"/v1/cache/{namespace}/k")).status_code == 204

    found: dict[str, dict[str, Any]] = {}

    async def arrived() -> bool:
        for resource in (stream, f"{namespace}/k"):
            page = await api.http.get("/v1/records", params={"resource": resource})
            if page.json()["records"]:
                found[resource] = page.json()["records"][0]
        return len(found) == 2

    await eventually(arrived)
    store_record, cache_record = found[stream], found[f"{namespace}/k"]
    assert (store_record["type"], store_record["source"], store_record["tenant"]) == (
        "event-store.metadata_changed",
        "event-store",
        "default",
    )
    assert (store_record["actor"], store_record["outcome"]) == ("tester", "success")
    assert store_record["data"]["max_count"] == 3
    assert store_record["data"]["request_id"]
    assert (cache_record["type"], cache_record["action"]) == ("cache.delete", "delete")

    issued = await api.http.post("/v1/checkpoints", params={"tenant": "default"})
    _, size, root = opened(issued.json())
    for got in (store_record, cache_record):
        proof = await api.http.get(
            "/v1/proofs/inclusion", params={"index": got["index"], "tree_size": size}
        )
        hashes = [bytes.fromhex(h) for h in proof.json()["hashes"]]
        leaf = bytes.fromhex(got["leaf_hash"])
        assert rfc9162.verify_inclusion(got["index"], size, leaf, hashes, root)
    verified = (await api.http.get("/v1/verify")).json()
    assert verified["ok"], verified["mismatch"]
    assert datetime.fromisoformat(store_record["time"]) <= datetime.now(UTC)
