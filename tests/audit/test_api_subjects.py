"""Erasure, on both backends: `DELETE /v1/subjects/{subject}` (scope `admin`) deletes the
subject's key; its sensitive fields read `ERASED` from then on, masked or revealed, the erasure
is a record of the log, and every proof, checkpoint, verification and export still holds."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from outrigger.clients.audit_verify import verify_export
from outrigger.stealth import ERASED, MASKED
from outrigger.testing import unique
from tests.audit import rfc9162
from tests.audit.api_support import Api, opened, proves, record

PERSONAL = {"email": "ada@example.com", "plan": "pro"}


async def _json(api: Api, method: str, path: str, **kwargs: Any) -> Any:
    response = await api.http.request(method, path, **kwargs)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _forget(api: Api, subject: str, **params: str) -> int:
    path = f"/v1/subjects/{quote(subject, safe='')}"
    response = await api.http.delete(path, params=params, headers=api.as_("admin", subject="dpo"))
    assert response.content == b""
    return response.status_code


async def test_forgetting_a_subject_erases_its_fields_and_every_proof_still_holds(
    api: Api,
) -> None:
    tenant, subject, other = unique("t"), unique("customer/"), unique("customer-")
    theirs = [record(tenant, data=PERSONAL, sensitive=["email"], subject=subject) for _ in range(3)]
    kept = record(tenant, data=PERSONAL, sensitive=["email"], subject=other)
    receipts = await api.receipts(*theirs[:2], kept)
    receipts += await api.receipts(theirs[2])
    before = await _json(api, "GET", "/v1/checkpoints/latest", params={"tenant": tenant})

    assert await _forget(api, subject, tenant=tenant) == 204
    assert await _forget(api, subject, tenant=tenant) == 204  # idempotent

    reveal = {"json": {"reason": "erasure check"}, "headers": api.as_("audit:reveal")}
    for sent in theirs:
        path = f"/v1/records/{sent['id']}"
        masked = await _json(api, "GET", path)
        revealed = await _json(api, "POST", f"{path}:reveal", **reveal)
        assert masked["data"] == revealed["data"] == {"email": ERASED, "plan": "pro"}
    path = f"/v1/records/{kept['id']}"
    assert (await _json(api, "GET", path))["data"] == {"email": MASKED, "plan": "pro"}
    assert (await _json(api, "POST", f"{path}:reveal", **reveal))["data"] == PERSONAL
    page = await _json(api, "GET", "/v1/records", params={"tenant": tenant, "limit": 1000})
    erased = [r for r in page["records"] if r["subject"] == subject]
    assert [r["data"]["email"] for r in erased] == [ERASED] * 3

    forgotten = [r for r in page["records"] if r["type"] == "audit.subject.forgotten"]
    assert [(r["actor"], r["action"], r["resource"], r["data"]) for r in forgotten] == [
        ("dpo", "forget", subject, {"had_key": False}),
        ("dpo", "forget", subject, {"had_key": True}),
    ]

    checkpoint = await _json(api, "POST", "/v1/checkpoints", params={"tenant": tenant})
    _, size, root = opened(checkpoint)
    assert size == len(receipts) + 2 + 4  # the two erasures and the four reveals
    for receipt in receipts:
        proof = await _json(
            api,
            "GET",
            "/v1/proofs/inclusion",
            params={"tenant": tenant, "index": receipt["index"], "tree_size": size},
        )
        assert proves(receipt, proof, root)
    _, old_size, old_root = opened(before)
    consistency = await _json(
        api,
        "GET",
        "/v1/proofs/consistency",
        params={"tenant": tenant, "from_size": old_size, "to_size": size},
    )
    hashes = [bytes.fromhex(h) for h in consistency["hashes"]]
    assert rfc9162.verify_consistency(old_size, size, old_root, root, hashes)
    verified = await _json(api, "GET", "/v1/verify", params={"tenant": tenant})
    assert verified["ok"], verified
    assert verified["checkpoints_checked"] >= 3  # both writes' and the one issued above
    export = await api.http.get("/v1/export", params={"tenant": tenant})
    checked = verify_export(export.text.splitlines(), checkpoint["verifier_key"])
    assert (checked.ok, checked.records_checked) == (True, size), checked


async def test_forgetting_needs_the_admin_scope_and_a_valid_subject(api: Api) -> None:
    path = f"/v1/subjects/{unique('s')}"
    for scopes in (("audit:write",), ("audit:reveal", "audit:read")):
        response = await api.http.delete(path, headers=api.as_(*scopes))
        assert response.status_code == 403, scopes
    bad = await api.http.delete("/v1/subjects/a%20b", headers=api.as_("admin"))
    assert bad.status_code == 422
    unknown = await api.http.delete(path, params={"tenant": "Bad!"}, headers=api.as_("admin"))
    assert unknown.status_code == 422
    default = await _forget(api, unique("never-seen"))
    assert default == 204
    page = await _json(api, "GET", "/v1/records", params={"type": "audit.subject.forgotten"})
    assert page["records"][0]["data"] == {"had_key": False}
