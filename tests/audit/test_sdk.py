"""`AuditClient` on its own, against the stand-in service (`fake_service.py`): what it sends,
how it reads every answer, paging, following, and an export that breaks off. The client against
the real service is `test_client.py`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest

from outrigger.clients import (
    AuditClient,
    AuditRecord,
    ExportedCheckpoint,
    ExportedRecord,
    Mismatch,
    SyncAuditClient,
    verify_export,
)
from outrigger.clients.audit_verify import checkpoint_root, consistency_holds, inclusion_holds
from outrigger.errors import ExternalServiceError, NotFound, Unauthorized
from outrigger.resilience import Policy, Retry
from outrigger.testing import unique
from tests.audit.fake_service import FakeAudit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def record(n: int, **changes: Any) -> dict[str, Any]:
    return {
        "source": "billing",
        "type": "billing.invoice.voided",
        "actor": "ada",
        "action": "void",
        "resource": f"invoice/{n}",
        "data": {"n": n},
        **changes,
    }


def client(fake: FakeAudit, transport: httpx.AsyncBaseTransport | None = None) -> AuditClient:
    return AuditClient(
        "http://audit",
        token="fake-token",
        policy=Policy(unique("audit"), retry=Retry(3, base_delay=0.01, max_delay=0.05)),
        transport=transport or httpx.ASGITransport(app=fake.app),
    )


@pytest.fixture
def fake() -> FakeAudit:
    return FakeAudit()


@pytest.fixture
async def audit(fake: FakeAudit) -> AsyncIterator[AuditClient]:
    async with client(fake) as audit:
        yield audit


async def test_records_get_receipts_with_a_checkpoint_and_retries_are_duplicates(
    audit: AuditClient, fake: FakeAudit
) -> None:
    first = await audit.record(record(1, id="inv-1", tenant="acme"))
    assert (first.id, first.source, first.tenant, first.index) == ("inv-1", "billing", "acme", 0)
    assert first.duplicate is False
    assert first.checkpoint is not None
    assert first.checkpoint.tree_size == 1
    assert checkpoint_root(first.checkpoint, fake.signer.verifier_key).hex() == first.leaf_hash

    many = await audit.record_many([record(2, tenant="acme"), record(3, tenant="acme")])
    assert [receipt.index for receipt in many] == [1, 2]
    assert all(receipt.id for receipt in many)  # given by the client: a retry is a duplicate
    sent = orjson.loads(fake.bodies[-1])
    assert [item["id"] for item in sent["records"]] == [receipt.id for receipt in many]
    again = await audit.record_many([{**record(2, tenant="acme"), "id": many[0].id}])
    assert again == [  # the stand-in answers its latest checkpoint, not the first covering one
        dataclasses.replace(many[0], duplicate=True, checkpoint=again[0].checkpoint)
    ]


async def test_queries_page_newest_first_with_the_filters_as_the_api_names_them(
    audit: AuditClient, fake: FakeAudit
) -> None:
    await audit.record_many([record(n, actor="ada" if n % 2 else "bob") for n in range(7)])
    page = await audit.query(actor="ada", limit=2)
    assert [found.resource for found in page.records] == ["invoice/5", "invoice/3"]
    assert all(isinstance(found, AuditRecord) for found in page.records)
    assert page.next_cursor is not None
    since = datetime(2026, 1, 1, tzinfo=UTC)
    await audit.query(record_type="t", outcome="failure", resource="r", since=since, until=since)
    params = fake.seen[-1].query_params
    assert dict(params) == {
        "tenant": "default",
        "limit": "100",
        "type": "t",
        "outcome": "failure",
        "resource": "r",
        "from": "2026-01-01T00:00:00+00:00",
        "to": "2026-01-01T00:00:00+00:00",
    }
    every = [found.index async for found in audit.query_all(page_size=3)]
    assert every == [6, 5, 4, 3, 2, 1, 0]
    assert sum(request.url.path == "/v1/records" for request in fake.seen[-3:]) == 3


async def test_one_record_masked_or_revealed(audit: AuditClient, fake: FakeAudit) -> None:
    await audit.record(record(1, id="odd/id:1", data={"card": "****"}))
    got = await audit.get("odd/id:1", source="billing")
    assert (got.id, got.data, got.index) == ("odd/id:1", {"card": "****"}, 0)
    assert fake.seen[-1].scope["raw_path"] == b"/v1/records/odd%2Fid%3A1"
    assert fake.seen[-1].query_params["source"] == "billing"
    revealed = await audit.reveal("odd/id:1", reason="case 7")
    assert revealed.data["revealed_for"] == "case 7"
    assert fake.seen[-1].scope["raw_path"] == b"/v1/records/odd%2Fid%3A1:reveal"
    with pytest.raises(NotFound):
        await audit.get("missing")


async def test_proofs_and_checkpoints_check_out_offline(
    audit: AuditClient, fake: FakeAudit
) -> None:
    assert await audit.latest_checkpoint("acme") is None
    await audit.record_many([record(n, tenant="acme") for n in range(5)])
    old = await audit.latest_checkpoint("acme")
    assert old is not None
    await audit.record_many([record(n, tenant="acme") for n in range(5, 9)])
    new = await audit.issue_checkpoint("acme")
    assert new.tree_size == 9
    key = fake.signer.verifier_key
    assert new.verifier_key == key
    root = checkpoint_root(new, key)
    proof = await audit.inclusion_proof(3, tenant="acme")
    assert (proof.index, proof.tree_size) == (3, 9)
    assert inclusion_holds(proof, root)
    consistency = await audit.consistency_proof(old.tree_size, 9, tenant="acme")
    assert consistency_holds(consistency, checkpoint_root(old, key), root)
    verification = await audit.verify("acme")
    assert (verification.ok, verification.tree_size, verification.mismatch) == (True, 9, None)
    fake.mismatch = {"index": 4, "reason": "the row does not hash to its leaf"}
    failed = await audit.verify("acme")
    assert (failed.ok, failed.mismatch) == (False, Mismatch(4, "the row does not hash to its leaf"))


async def test_an_export_is_parsed_line_by_line_and_verifies(
    audit: AuditClient, fake: FakeAudit
) -> None:
    await audit.record_many([record(n, tenant="acme") for n in range(6)])
    lines = [line async for line in audit.export("acme")]
    assert isinstance(lines[0], ExportedCheckpoint)
    assert all(isinstance(line, ExportedRecord) for line in lines[1:])
    assert [line.index for line in lines[1:] if isinstance(line, ExportedRecord)] == list(range(6))
    assert verify_export(lines, fake.signer.verifier_key).ok
    raw = [line async for line in audit.export_ndjson("acme")]
    assert verify_export(raw, fake.signer.verifier_key).records_checked == 6
    assert fake.seen[-1].headers["Accept"].startswith("application/x-ndjson")


class BreaksOff(httpx.AsyncBaseTransport):
    """Answers the export with its first `keep` lines, then the connection drops."""

    def __init__(self, app: Any, keep: int) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.keep = keep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path != "/v1/export":
            return response
        body = await response.aread()
        keep = b"".join(body.splitlines(keepends=True)[: self.keep])

        async def chunks() -> AsyncIterator[bytes]:
            yield keep
            raise httpx.RemoteProtocolError("peer closed connection", request=request)

        return httpx.Response(200, headers=response.headers, stream=_Stream(chunks()))


class _Stream(httpx.AsyncByteStream):
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.chunks:
            yield chunk


async def test_an_export_that_breaks_off_raises_after_the_lines_it_got(fake: FakeAudit) -> None:
    async with client(fake, BreaksOff(fake.app, keep=3)) as audit:
        await audit.record_many([record(n) for n in range(5)])
        got: list[Any] = []
        with pytest.raises(ExternalServiceError, match="broke off"):
            async for line in audit.export():
                got.append(line)
    assert len(got) == 3


async def test_an_answer_that_is_not_an_export_line_is_an_upstream_failure(
    fake: FakeAudit,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"kind": "gossip"}\n')

    async with client(fake, httpx.MockTransport(answer)) as audit:
        with pytest.raises(ExternalServiceError, match="not an export line"):
            [line async for line in audit.export()]


async def test_follow_prints_the_last_records_then_new_ones_and_survives_a_failed_poll(
    fake: FakeAudit,
) -> None:
    failing = {"left": 0}

    class Flaky(httpx.AsyncBaseTransport):
        inner = httpx.ASGITransport(app=fake.app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if failing["left"] > 0 and request.method == "GET":
                failing["left"] -= 1
                raise httpx.ConnectError("refused", request=request)
            return await self.inner.handle_async_request(request)

    async with client(fake, Flaky()) as audit:
        await audit.record_many([record(n) for n in range(4)])
        following = audit.follow(last=2, interval=0.05, actor="ada")
        async with contextlib.aclosing(following):
            assert [(await anext(following)).index for _ in range(2)] == [2, 3]
            failing["left"] = 10  # more than the retries of one poll
            await audit.record_many([record(n) for n in range(4, 8)])
            await audit.record(record(8, actor="bob"))
            await audit.record(record(9))
            later = [(await asyncio.wait_for(anext(following), 5)).index for _ in range(5)]
    assert later == [4, 5, 6, 7, 9]


async def test_follow_raises_what_its_first_request_meets(fake: FakeAudit) -> None:
    async with AuditClient(
        "http://audit", token="forged", transport=httpx.ASGITransport(app=fake.app)
    ) as audit:
        with pytest.raises(Unauthorized, match="bad token signature"):
            await anext(audit.follow())


def test_the_blocking_client_does_the_same(fake: FakeAudit) -> None:
    transport = httpx.ASGITransport(app=fake.app)
    with SyncAuditClient("http://audit", token="fake-token", transport=transport) as audit:
        receipts = audit.record_many([record(n) for n in range(3)])
        assert [receipt.index for receipt in receipts] == [0, 1, 2]
        assert [found.index for found in audit.query_all(page_size=2)] == [2, 1, 0]
        assert audit.get(receipts[0].id).resource == "invoice/0"
        lines = list(audit.export())
        assert verify_export(lines, fake.signer.verifier_key).records_checked == 3
        following = audit.follow(last=3)
        assert [next(following).index for _ in range(3)] == [0, 1, 2]
        following.close()
