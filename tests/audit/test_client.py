"""`AuditClient`, the Python SDK of the audit service, against the service served for real.

Every test builds the app inline and serves it with uvicorn on a free port, on the embedded
(SQLite) and the PostgreSQL backend. Checkpoints are checked with the verifier key of the
settings' signing key, got out of band, never the one the service hands out.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from outrigger.clients import (
    AuditClient,
    AuditRecord,
    ExportedCheckpoint,
    ExportedRecord,
    SyncAuditClient,
    verify_export,
)
from outrigger.clients.audit_verify import checkpoint_root, consistency_holds, inclusion_holds
from outrigger.errors import Forbidden, InvalidInput, NotFound
from outrigger.resilience import Policy, Retry
from outrigger.stealth import ERASED, MASKED
from outrigger.testing import bearer, serving, unique
from services.audit.app import build_app
from tests.audit import rfc9162
from tests.audit.api_support import BACKENDS, database_for, record, settings_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from services.audit.settings import AuditSettings

ALL = ("audit:read", "audit:write", "audit:reveal")


def without_id(sent: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in sent.items() if name != "id"}


@dataclass
class Served:
    url: str
    settings: AuditSettings

    @property
    def key(self) -> str:
        return self.settings.signer().verifier_key

    def client(self, *scopes: str) -> AuditClient:
        token = bearer(self.settings, *(scopes or ALL))["Authorization"].removeprefix("Bearer ")
        return AuditClient(
            self.url,
            token=token,
            policy=Policy(unique("audit"), retry=Retry(3, base_delay=0.01, max_delay=0.05)),
        )


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_for(request.param, request, tmp_path)


@pytest.fixture
async def served(database: str, tmp_path: Path) -> AsyncIterator[Served]:
    settings = settings_for(database, tmp_path)
    async with serving(build_app(settings)) as url:
        yield Served(url, settings)


@pytest.fixture
async def audit(served: Served) -> AsyncIterator[AuditClient]:
    async with served.client() as client:
        yield client


async def test_a_record_gets_a_receipt_whose_checkpoint_and_proof_check_out(
    audit: AuditClient, served: Served
) -> None:
    tenant = unique("t")
    receipt = await audit.record(record(tenant))
    assert (receipt.tenant, receipt.index, receipt.duplicate) == (tenant, 0, False)
    assert receipt.checkpoint is not None
    assert receipt.checkpoint.tree_size == 1
    root = checkpoint_root(receipt.checkpoint, served.key)
    assert root.hex() == receipt.leaf_hash  # a tree of one leaf

    more = await audit.record_many([without_id(record(tenant)) for _ in range(4)])
    assert all(r.id for r in more)  # given by the SDK
    assert [r.index for r in more] == [1, 2, 3, 4]
    last = more[-1].checkpoint
    assert last is not None
    root = checkpoint_root(last, served.key)
    proof = await audit.inclusion_proof(2, tenant=tenant, tree_size=last.tree_size)
    assert proof.leaf_hash == more[1].leaf_hash
    assert inclusion_holds(proof, root)
    hashes = [bytes.fromhex(h) for h in proof.hashes]
    assert rfc9162.verify_inclusion(2, 5, bytes.fromhex(proof.leaf_hash), hashes, root)


async def test_sending_records_again_answers_their_first_receipts(audit: AuditClient) -> None:
    tenant = unique("t")
    sent = [record(tenant) for _ in range(3)]
    first = await audit.record_many(sent)
    again = await audit.record_many(sent)
    assert again == [dataclasses.replace(receipt, duplicate=True) for receipt in first]
    assert (await audit.record(sent[0])).index == first[0].index


async def test_queries_page_newest_first_with_filters(audit: AuditClient) -> None:
    tenant = unique("t")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await audit.record_many(
        [
            record(
                tenant,
                actor="ada" if n % 2 else "bob",
                outcome="failure" if n == 5 else "success",
                time=(start + timedelta(minutes=n)).isoformat(),
            )
            for n in range(8)
        ]
    )
    page = await audit.query(tenant, actor="ada", limit=2)
    assert [found.index for found in page.records] == [7, 5]
    assert all(isinstance(found, AuditRecord) for found in page.records)
    assert page.next_cursor is not None
    rest = await audit.query(tenant, actor="ada", limit=2, cursor=page.next_cursor)
    assert [found.index for found in rest.records] == [3, 1]
    every = [found.index async for found in audit.query_all(tenant, page_size=3)]
    assert every == [7, 6, 5, 4, 3, 2, 1, 0]
    since, until = start + timedelta(minutes=2), start + timedelta(minutes=5)
    for page_size in (1, 2, 1000):  # a window's cursor (time and index) is as opaque
        window = audit.query_all(tenant, since=since, until=until, page_size=page_size)
        assert [found.index async for found in window] == [4, 3, 2]
    failed = await audit.query(tenant, outcome="failure", record_type="document.updated")
    assert [found.index for found in failed.records] == [5]
    assert (await audit.query(unique("t"))).records == ()


async def test_a_record_is_read_masked_and_revealed_with_a_reason(
    audit: AuditClient, served: Served
) -> None:
    tenant = unique("t")
    sent = record(tenant, id=unique("card:7"), data={"card": "4111"}, sensitive=["card"])
    await audit.record(sent)
    masked = await audit.get(sent["id"])
    assert masked.data["card"] == dict(MASKED)
    assert masked.sensitive == ("card",)
    revealed = await audit.reveal(sent["id"], reason="chargeback 7", source=sent["source"])
    assert revealed.data == {"card": "4111"}
    newest = (await audit.query(tenant, limit=1)).records[0]
    assert (newest.type, newest.resource) == (
        "audit.record.revealed",
        f"{sent['source']}/{sent['id']}",
    )
    with pytest.raises(NotFound):
        await audit.get(unique("missing"))
    async with served.client("audit:read") as reader:
        with pytest.raises(Forbidden, match="audit:reveal"):
            await reader.reveal(sent["id"], reason="curious")


async def test_an_id_with_a_slash_is_read_and_a_subject_forgotten(
    audit: AuditClient, served: Served
) -> None:
    tenant, subject = unique("t"), unique("customer/")
    sent = record(tenant, id=unique("orders/7/"), data={"card": "4111"}, sensitive=["card"])
    await audit.record({**sent, "subject": subject})
    assert (await audit.get(sent["id"])).data == {"card": dict(MASKED)}
    async with served.client("audit:write") as writer:
        with pytest.raises(Forbidden, match="admin"):
            await writer.forget(subject)
    async with served.client("admin") as admin:
        await admin.forget(subject, tenant=tenant)
    assert (await audit.get(sent["id"])).data == {"card": dict(ERASED)}
    assert (await audit.reveal(sent["id"], reason="dsar")).data == {"card": dict(ERASED)}
    assert (await audit.verify(tenant)).ok


async def test_checkpoints_grow_consistently(audit: AuditClient, served: Served) -> None:
    tenant = unique("t")
    assert await audit.latest_checkpoint(tenant) is None
    await audit.record_many([record(tenant) for _ in range(3)])
    old = await audit.latest_checkpoint(tenant)
    assert old is not None
    await audit.record_many([record(tenant) for _ in range(4)])
    new = await audit.issue_checkpoint(tenant)
    assert (old.tree_size, new.tree_size) == (3, 7)
    assert new.verifier_key == served.key
    proof = await audit.consistency_proof(3, 7, tenant=tenant)
    old_root, new_root = checkpoint_root(old, served.key), checkpoint_root(new, served.key)
    assert consistency_holds(proof, old_root, new_root)
    assert not consistency_holds(proof, new_root, old_root)
    with pytest.raises(NotFound, match="leaf 7 is not in"):
        await audit.inclusion_proof(7, tenant=tenant, tree_size=7)
    with pytest.raises(InvalidInput):
        await audit.query("Not A Tenant")


async def test_the_service_verifies_a_tenant(audit: AuditClient) -> None:
    tenant = unique("t")
    await audit.record_many([record(tenant) for _ in range(5)])
    verification = await audit.verify(tenant)
    assert (verification.ok, verification.mismatch) == (True, None)
    assert (verification.tenant, verification.tree_size, verification.records_checked) == (
        tenant,
        5,
        5,
    )
    assert verification.checkpoints_checked >= 1


async def test_an_export_streams_parsed_lines_that_verify_offline(
    audit: AuditClient, served: Served
) -> None:
    tenant = unique("t")
    await audit.record_many([record(tenant, data={"n": n, "text": "naïve ✓"}) for n in range(9)])
    lines = [line async for line in audit.export(tenant)]
    assert isinstance(lines[0], ExportedCheckpoint)
    assert [line.index for line in lines if isinstance(line, ExportedRecord)] == list(range(9))
    result = verify_export(lines, served.key)
    assert (result.ok, result.tenant, result.tree_size, result.records_checked) == (
        True,
        tenant,
        9,
        9,
    )
    raw = [line async for line in audit.export_ndjson(tenant)]
    assert verify_export(raw, served.key).ok
    with pytest.raises(NotFound):
        [line async for line in audit.export(unique("t"))]


async def test_follow_gives_the_last_records_then_each_new_one(audit: AuditClient) -> None:
    tenant = unique("t")
    await audit.record_many([record(tenant) for _ in range(3)])
    following = audit.follow(tenant, last=2, interval=0.05, actor="alice")
    async with contextlib.aclosing(following):
        assert [(await anext(following)).index for _ in range(2)] == [1, 2]
        await audit.record_many([record(tenant), record(tenant, actor="bob"), record(tenant)])
        later = [(await asyncio.wait_for(anext(following), 10)).index for _ in range(2)]
    assert later == [3, 5]


async def test_the_blocking_client_does_the_same(served: Served) -> None:
    token = bearer(served.settings, *ALL)["Authorization"].removeprefix("Bearer ")
    tenant = unique("t")

    def script() -> None:
        with SyncAuditClient(served.url, token=token) as audit:
            receipts = audit.record_many([record(tenant) for _ in range(3)])
            assert [receipt.index for receipt in receipts] == [0, 1, 2]
            assert [found.index for found in audit.query_all(tenant, page_size=2)] == [2, 1, 0]
            assert audit.verify(tenant).ok
            assert verify_export(audit.export(tenant), served.key).records_checked == 3

    await asyncio.to_thread(script)
