"""The broker is a degraded-only dependency, as for the event store: without it the audit
service is ready (degraded) and takes records over HTTP; once it is back, queue ingest starts by
itself. On a private RabbitMQ node, stopped and started by the test."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from outrigger.bus import CloudEvent, connect_bus
from outrigger.testing import unique
from tests.audit.api_support import Api, eventually, record, running, settings_for
from tests.databases import copy_sqlite

if TYPE_CHECKING:
    from pathlib import Path

    from outrigger.testing.servers import PrivateRabbitMQ

pytestmark = pytest.mark.rabbitmq


async def _readiness(api: Api) -> dict[str, Any]:
    response = await api.http.get("/readyz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_without_the_broker_the_service_is_degraded_and_ingest_starts_when_it_is_back(
    rabbitmq_server: PrivateRabbitMQ, audit_sqlite_template: Path, tmp_path: Path
) -> None:
    rabbitmq_server.stop()
    settings = settings_for(
        copy_sqlite(audit_sqlite_template, tmp_path), tmp_path, amqp_url=rabbitmq_server.url
    )
    tenant = unique("t")
    async with running(settings) as api:
        readiness = await _readiness(api)
        assert readiness["status"] == "degraded"
        assert readiness["checks"]["database"] == "ok"
        assert (await api.write(record(tenant))).status_code == 201
        rabbitmq_server.start()

        async def ready() -> bool:
            return (await _readiness(api))["status"] == "ready"

        await eventually(ready, within=30)
        bus = connect_bus(rabbitmq_server.url, source="tests.producer")
        await bus.start()
        try:
            event = CloudEvent.new(
                source="tests.producer",
                type="doc.synced",
                data={"actor": "a", "action": "sync", "resource": "doc/1", "tenant": tenant},
            )

            async def stored() -> bool:
                # sent again until it is there: the queue is declared by the subscription the
                # service makes once connected, a moment after the bus reports ready
                if (await api.http.get(f"/v1/records/{event.id}")).status_code == 200:
                    return True
                await bus.publish("outrigger.audit", "tests.sync", event)
                return False

            await eventually(stored)
        finally:
            await bus.close()
