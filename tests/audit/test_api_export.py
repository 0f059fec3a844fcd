"""Export: NDJSON lines that verify offline (the independent RFC 9162 verifier and the
checkpoint's signature), on both backends."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from outrigger.notes import open_checkpoint
from outrigger.testing import unique
from services.audit.api.models import RecordIn
from tests.audit import rfc9162
from tests.audit.api_support import Api, record


async def _export(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = await api.http.get("/v1/export", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.text.endswith("\n")
    return [orjson.loads(line) for line in response.text.splitlines()]


def _check(lines: list[dict[str, Any]], tenant: str) -> list[dict[str, Any]]:
    """Checks an export as `outrigger audit verify` does; returns its record lines."""
    checkpoint, *records = lines
    assert checkpoint["kind"] == "checkpoint"
    origin, size, root = open_checkpoint(checkpoint["note"], checkpoint["verifier_key"])
    assert (origin, size, root.hex()) == (
        f"outrigger.audit/{tenant}",
        checkpoint["tree_size"],
        checkpoint["root_hash"],
    )
    for line in records:
        assert line["kind"] == "record"
        leaf = line["leaf"].encode()
        digest = hashlib.sha256(b"\x00" + leaf).digest()
        assert digest.hex() == line["leaf_hash"]
        proof = [bytes.fromhex(h) for h in line["proof"]]
        assert rfc9162.verify_inclusion(line["index"], size, digest, proof, root)
    return records


async def test_an_export_verifies_line_by_line_against_its_checkpoint(api: Api) -> None:
    tenant = unique("t")
    sent = [record(tenant, data={"n": n, "text": "naïve ✓"}) for n in range(11)]
    await api.receipts(*sent[:4])
    await api.receipts(*sent[4:])  # the latest checkpoint covers all 11
    records = _check(await _export(api, tenant=tenant), tenant)
    assert [line["index"] for line in records] == list(range(11))
    assert [orjson.loads(line["leaf"])["id"] for line in records] == [r["id"] for r in sent]
    assert orjson.loads(records[3]["leaf"])["data"] == {"n": 3, "text": "naïve ✓"}


async def test_an_export_issues_a_checkpoint_covering_what_came_from_the_queue(api: Api) -> None:
    tenant = unique("t")
    await api.receipts(record(tenant))
    [stored] = await api.app.state.audit.ingest([RecordIn(**record(tenant)).to_record()])
    assert stored.index == 1  # through the queue's use case: no checkpoint covers it yet
    [checkpoint, *_] = await _export(api, tenant=tenant)
    assert checkpoint["tree_size"] == 2


async def test_an_export_of_a_time_range_holds_only_its_records(api: Api) -> None:
    tenant = unique("t")
    times = [f"2026-0{month}-15T12:00:00Z" for month in range(1, 7)]
    await api.receipts(*[record(tenant, time=time) for time in times])
    lines = await _export(api, tenant=tenant, **{"from": "2026-02-01T00:00:00Z", "to": times[4]})
    records = _check(lines, tenant)
    assert [line["index"] for line in records] == [1, 2, 3]


async def test_a_tampered_export_line_fails_the_check(api: Api) -> None:
    tenant = unique("t")
    await api.receipts(*[record(tenant) for _ in range(3)])
    lines = await _export(api, tenant=tenant)
    checkpoint, first, *_ = lines
    edited = first["leaf"].replace("alice", "mallory")
    digest = hashlib.sha256(b"\x00" + edited.encode()).digest()
    proof = [bytes.fromhex(h) for h in first["proof"]]
    root = bytes.fromhex(checkpoint["root_hash"])
    assert not rfc9162.verify_inclusion(0, checkpoint["tree_size"], digest, proof, root)
