"""The elected loops, on both backends: checkpoints for what came from the queue (issued and
published), and retention that drops old records while every proof still holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from outrigger.bus import connect_bus
from outrigger.testing import AuditInbox, unique
from services.audit.api.models import RecordIn
from services.audit.domain.rules import leaf_of
from services.audit.usecases.retention import cutoff
from tests.audit.api_support import Api, eventually, opened, proves, record, running, settings_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from services.audit.domain.models import AuditRecord


def audit_record(tenant: str, **fields: Any) -> AuditRecord:
    return RecordIn(**record(tenant, **fields)).to_record()


@pytest.fixture
async def looping(database: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = settings_for(
        database,
        tmp_path,
        audit_checkpoint_every=5,
        audit_checkpoint_seconds=0.3,
        audit_retention_months=1,
        audit_retention_interval_seconds=0.1,
    )
    async with running(settings) as api:
        yield api


async def test_queued_records_are_checkpointed_and_the_checkpoints_published(
    looping: Api,
) -> None:
    api, tenant = looping, unique("t")
    bus = connect_bus(api.settings.amqp_url, source="tests.monitor")
    await bus.start()
    try:
        published = AuditInbox()
        await bus.subscribe(unique("monitor"), [("outrigger.checkpoints", "audit.#")], published)
        service = api.app.state.audit
        await service.ingest([audit_record(tenant) for _ in range(3)])

        async def checkpointed(size: int) -> bool:
            latest = await api.http.get("/v1/checkpoints/latest", params={"tenant": tenant})
            return latest.status_code == 200 and latest.json()["tree_size"] == size

        await eventually(lambda: checkpointed(3))  # after `seconds`, for a tree that grew
        await service.ingest([audit_record(tenant) for _ in range(6)])
        await eventually(lambda: checkpointed(9))

        async def both_published() -> bool:
            ours = [d for d in published.records if d.event.subject == tenant]
            return {d.event.data["tree_size"] for d in ours} >= {3, 9}

        await eventually(both_published)
        ours = [d for d in published.records if d.event.subject == tenant]
        assert {d.routing_key for d in ours} == {f"audit.{tenant}"}
        assert {d.event.type for d in ours} == {"dev.outrigger.audit.checkpoint"}
        for delivery in ours:
            opened(delivery.event.data)
    finally:
        await bus.close()


async def test_retention_drops_old_records_and_every_proof_still_holds(looping: Api) -> None:
    api, tenant = looping, unique("t")
    log = api.app.state.audit.log
    long_ago = datetime.now(UTC) - timedelta(days=100)
    await log.append([leaf_of(audit_record(tenant), long_ago) for _ in range(3)])
    receipts = await api.receipts(record(tenant), record(tenant))
    _, size, root = opened(receipts[-1]["checkpoint"])

    async def dropped() -> bool:
        return await log.retained_from(tenant) == 3

    await eventually(dropped)
    page = (await api.http.get("/v1/records", params={"tenant": tenant})).json()["records"]
    assert [r["index"] for r in page] == [4, 3]
    verified = (await api.http.get("/v1/verify", params={"tenant": tenant})).json()
    assert (verified["ok"], verified["retained_from"], verified["records_checked"]) == (
        True,
        3,
        2,
    )
    for receipt in receipts:
        proof = await api.http.get(
            "/v1/proofs/inclusion",
            params={"tenant": tenant, "index": receipt["index"], "tree_size": size},
        )
        assert proves(receipt, proof.json(), root)
    gone = await api.http.get("/v1/proofs/inclusion", params={"tenant": tenant, "index": 0})
    assert gone.status_code == 200  # a dropped record's leaf is still in the tree


def test_the_cutoff_keeps_whole_months() -> None:
    now = datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
    assert cutoff(now, 1) == datetime(2026, 2, 1, tzinfo=UTC)
    assert cutoff(now, 3) == datetime(2025, 12, 1, tzinfo=UTC)
    assert cutoff(now, 15) == datetime(2024, 12, 1, tzinfo=UTC)
