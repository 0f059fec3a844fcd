"""Verification: a log as written verifies on both backends; rows edited, deleted, inserted or
reordered directly in PostgreSQL are each detected and located, and so is a leaf hash rewritten
to match an edited row (the signed checkpoints catch it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from outrigger.db import conninfo
from outrigger.merkle import leaf_hash
from outrigger.testing import unique
from services.audit.usecases import verify
from tests.audit.api_support import Api, proves, record, running, settings_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

SIZE = 9


async def _verify(api: Api, tenant: str) -> dict[str, Any]:
    response = await api.http.get("/v1/verify", params={"tenant": tenant})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _log(api: Api, tenant: str) -> None:
    """SIZE records in three batches (so three checkpoints: 3, 6, 9)."""
    for _ in range(3):
        await api.receipts(*[record(tenant, data={"title": "Résumé", "n": n}) for n in range(3)])


async def test_a_log_as_written_verifies(api: Api) -> None:
    tenant = unique("t")
    await _log(api, tenant)
    result = await _verify(api, tenant)
    assert result == {
        "tenant": tenant,
        "tree_size": SIZE,
        "records_checked": SIZE,
        "retained_from": 0,
        "checkpoints_checked": 3,
        "ok": True,
        "mismatch": None,
    }


async def test_an_empty_tenant_verifies_as_empty(api: Api) -> None:
    result = await _verify(api, unique("t"))
    assert (result["ok"], result["tree_size"], result["records_checked"]) == (True, 0, 0)


@pytest.fixture
async def pg_api(audit_postgres_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async with running(settings_for(audit_postgres_url, tmp_path)) as api:
        yield api


@pytest.fixture
async def sql(audit_postgres_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(
        conninfo(audit_postgres_url), autocommit=True
    ) as connection:
        yield connection


EDIT_BODY = (
    "UPDATE audit.records SET body = convert_to(replace(convert_from(body, 'UTF8'), "
    "'Résumé', 'Resume'), 'UTF8') WHERE tenant = %(tenant)s AND idx = 3"
)
TAMPERING = {
    "edited body": ([EDIT_BODY], 3, "does not hash"),
    "edited column": (
        ["UPDATE audit.records SET actor = 'mallory' WHERE tenant = %(tenant)s AND idx = 2"],
        2,
        "columns",
    ),
    "deleted": (["DELETE FROM audit.records WHERE tenant = %(tenant)s AND idx = 4"], 4, "missing"),
    "inserted twice": (
        [
            "INSERT INTO audit.records SELECT * FROM audit.records "
            "WHERE tenant = %(tenant)s AND idx = 5"
        ],
        5,
        "2 rows",
    ),
    "inserted beyond": (
        [
            "INSERT INTO audit.records SELECT tenant, idx + 9, source, id || '-x', type, actor, "
            "resource, outcome, time, recorded_at, body, leaf_hash FROM audit.records "
            "WHERE tenant = %(tenant)s AND idx = 0"
        ],
        9,
        "beyond the tree",
    ),
    "reordered": (
        [
            "UPDATE audit.records SET idx = CASE idx WHEN 6 THEN 1 ELSE 6 END "
            "WHERE tenant = %(tenant)s AND idx IN (1, 6)"
        ],
        1,
        "does not hash",
    ),
    "leaf node deleted": (
        ["DELETE FROM audit.nodes WHERE tenant = %(tenant)s AND level = 0 AND idx = 7"],
        7,
        "no leaf hash",
    ),
}


@pytest.mark.postgres
@pytest.mark.parametrize("tampering", list(TAMPERING))
async def test_tampering_in_postgresql_is_detected_and_located(
    pg_api: Api, sql: psycopg.AsyncConnection[Any], tampering: str
) -> None:
    statements, index, reason = TAMPERING[tampering]
    tenant = unique("t")
    await _log(pg_api, tenant)
    assert (await _verify(pg_api, tenant))["ok"]
    for statement in statements:
        changed = await sql.execute(statement, {"tenant": tenant})
        assert changed.rowcount >= 1
    result = await _verify(pg_api, tenant)
    assert result["ok"] is False
    assert result["mismatch"]["index"] == index, result
    assert reason in result["mismatch"]["reason"]


@pytest.mark.postgres
async def test_a_leaf_hash_rewritten_to_match_an_edited_row_breaks_the_signed_checkpoint(
    pg_api: Api, sql: psycopg.AsyncConnection[Any]
) -> None:
    tenant = unique("t")
    await _log(pg_api, tenant)
    await sql.execute(EDIT_BODY, {"tenant": tenant})
    cursor = await sql.execute(
        "SELECT body FROM audit.records WHERE tenant = %s AND idx = 3", (tenant,)
    )
    [(body,)] = await cursor.fetchall()
    await sql.execute(
        "UPDATE audit.nodes SET hash = %s WHERE tenant = %s AND level = 0 AND idx = 3",
        (leaf_hash(bytes(body)), tenant),
    )
    result = await _verify(pg_api, tenant)
    assert result["ok"] is False
    assert result["mismatch"]["index"] is None
    assert "checkpoint 6" in result["mismatch"]["reason"]
    assert "0-5" in result["mismatch"]["reason"]


@pytest.mark.postgres
async def test_a_tampered_inner_node_that_proofs_are_served_from_is_named(
    pg_api: Api, sql: psycopg.AsyncConnection[Any]
) -> None:
    tenant = unique("t")
    await _log(pg_api, tenant)
    first = (await pg_api.http.get("/v1/records", params={"tenant": tenant})).json()["records"][-1]
    await sql.execute(  # the subtree over indexes 4-7: in the proofs of indexes 0-3
        "UPDATE audit.nodes SET hash = %s WHERE tenant = %s AND level = 2 AND idx = 1",
        (bytes(32), tenant),
    )
    latest = (await pg_api.http.get("/v1/checkpoints/latest", params={"tenant": tenant})).json()
    proof = (
        await pg_api.http.get("/v1/proofs/inclusion", params={"tenant": tenant, "index": 0})
    ).json()
    assert not proves(first, proof, bytes.fromhex(latest["root_hash"]))
    result = await _verify(pg_api, tenant)
    assert result["ok"] is False
    assert result["mismatch"] == {
        "index": None,
        "reason": "the tree's node 2/1 (over indexes 4-7) is not the hash of the leaves below "
        "it: proofs through it fail",
    }
    await sql.execute(
        "DELETE FROM audit.nodes WHERE tenant = %s AND level = 1 AND idx = 0", (tenant,)
    )
    result = await _verify(pg_api, tenant)
    assert "node 1/0 (over indexes 0-1) is missing" in result["mismatch"]["reason"]


@pytest.mark.postgres
async def test_a_checkpoint_whose_note_was_altered_does_not_verify(
    pg_api: Api, sql: psycopg.AsyncConnection[Any]
) -> None:
    tenant = unique("t")
    await _log(pg_api, tenant)
    await sql.execute(
        "UPDATE audit.checkpoints SET note = replace(note, %s, %s) WHERE tenant = %s AND size = 6",
        (f"{tenant}\n6\n", f"{tenant}\n7\n", tenant),
    )
    result = await _verify(pg_api, tenant)
    assert result["mismatch"] == {
        "index": None,
        "reason": "checkpoint 6: the signature of outrigger.audit does not verify",
    }


@pytest.mark.postgres
async def test_rows_dropped_by_retention_are_not_missing(
    pg_api: Api, sql: psycopg.AsyncConnection[Any]
) -> None:
    tenant = unique("t")
    await _log(pg_api, tenant)
    await sql.execute("DELETE FROM audit.records WHERE tenant = %s AND idx < 4", (tenant,))
    await sql.execute("UPDATE audit.trees SET retained_from = 4 WHERE tenant = %s", (tenant,))
    result = await _verify(pg_api, tenant)
    assert (result["ok"], result["retained_from"], result["records_checked"]) == (True, 4, 5)
    proof = await pg_api.http.get("/v1/proofs/inclusion", params={"tenant": tenant, "index": 1})
    assert proof.status_code == 200  # the nodes stay: a dropped record still proves inclusion


@pytest.mark.postgres
async def test_a_log_read_in_many_chunks_verifies_and_stops_at_the_first_mismatch(
    pg_api: Api, sql: psycopg.AsyncConnection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify, "CHUNK", 2)  # chunks read ahead while the one before is checked
    tenant = unique("t")
    await _log(pg_api, tenant)
    result = await _verify(pg_api, tenant)
    assert (result["ok"], result["records_checked"], result["checkpoints_checked"]) == (True, 9, 3)
    await sql.execute(EDIT_BODY, {"tenant": tenant})
    for _ in range(3):  # the read ahead of the failing chunk is finished, not left running
        result = await _verify(pg_api, tenant)
        assert result["mismatch"]["index"] == 3
        assert "does not hash" in result["mismatch"]["reason"]
