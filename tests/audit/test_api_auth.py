"""Auth first, and every bad request a 4xx problem: the audit API's edges, on both backends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.audit.api_support import PROBLEM, Api, record

if TYPE_CHECKING:
    import httpx

READ, WRITE, REVEAL = "audit:read", "audit:write", "audit:reveal"
ROUTES: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/records", WRITE, record()),
    ("GET", "/v1/records", READ, None),
    ("GET", "/v1/records/some-id", READ, None),
    ("POST", "/v1/records/some-id:reveal", REVEAL, {"reason": "audit"}),
    ("GET", "/v1/proofs/inclusion?index=0", READ, None),
    ("GET", "/v1/proofs/consistency?from_size=1", READ, None),
    ("GET", "/v1/checkpoints/latest", READ, None),
    ("POST", "/v1/checkpoints", WRITE, None),
    ("GET", "/v1/verify", READ, None),
    ("GET", "/v1/export", READ, None),
]
OTHER = {READ: WRITE, WRITE: READ, REVEAL: READ}


async def call(
    api: Api, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
) -> httpx.Response:
    return await api.http.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES)
async def test_no_token_is_401_and_another_scope_403_before_the_request_is_read(
    api: Api, method: str, path: str, scope: str, body: dict[str, Any] | None
) -> None:
    garbage = {"content-type": "application/json"}
    anonymous = await api.http.request(
        method, path, content=b"{not json", headers={**garbage, "Authorization": ""}
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == PROBLEM
    wrong = {**garbage, **api.as_(OTHER[scope], "events:read", "cache:write")}
    refused = await api.http.request(method, path, content=b"{not json", headers=wrong)
    assert refused.status_code == 403
    assert refused.json()["required_scope"] == scope
    allowed = await call(api, method, path, body, api.as_(scope))
    assert allowed.status_code not in (401, 403)


async def test_admin_holds_every_audit_scope(api: Api) -> None:
    sent = record()
    await api.receipts(sent)
    admin = api.as_("admin")
    revealed = await api.http.post(
        f"/v1/records/{sent['id']}:reveal", json={"reason": "incident 7"}, headers=admin
    )
    assert revealed.status_code == 200


BAD_RECORDS = [
    ({"id": "has space"}, 422, "id"),
    ({"source": ""}, 422, "source"),
    ({"type": "x" * 201}, 422, "type"),
    ({"tenant": "Upper"}, 422, "tenant"),
    ({"actor": ""}, 422, "actor"),
    ({"action": "a\nb"}, 422, "action"),
    ({"resource": "r" * 501}, 422, "resource"),
    ({"outcome": "maybe"}, 422, "outcome"),
    ({"time": "2026-12-06T10:00:00"}, 422, "time"),
    ({"data": []}, 422, "data"),
    ({"data": {"blob": "x" * 70_000}}, 413, "65536"),
    ({"sensitive": ["a..b"]}, 422, "sensitive"),
    ({"sensitive": [f"f{n}" for n in range(33)]}, 422, "sensitive"),
    ({"subject": "two words"}, 422, "subject"),
    ({"unknown": 1}, 422, "unknown"),
]


@pytest.mark.parametrize(("change", "status", "named"), BAD_RECORDS)
async def test_a_bad_record_is_a_problem_naming_the_field_and_nothing_is_stored(
    api: Api, change: dict[str, Any], status: int, named: str
) -> None:
    tenant = "bad-input"
    before = (await api.http.get("/v1/records", params={"tenant": tenant})).json()["records"]
    good = record(tenant)
    response = await api.write(good, {**record(tenant), **change})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert named in response.text
    after = (await api.http.get("/v1/records", params={"tenant": tenant})).json()["records"]
    assert after == before


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"records": []}', 422),
        (b'{"records": [' + b",".join([b"{}"] * 1001) + b"]}", 422),
        (b"[]", 422),
        (b'{"id": 1}', 422),
    ],
)
async def test_a_body_that_is_no_record_is_a_4xx_problem(
    api: Api, body: bytes, status: int
) -> None:
    response = await api.http.post(
        "/v1/records", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    "path",
    [
        "/v1/records?tenant=UPPER",
        "/v1/records?limit=0",
        "/v1/records?limit=1001",
        "/v1/records?cursor=zz",
        "/v1/records?from=yesterday",
        "/v1/records?to=2026-12-06T10:00:00",
        "/v1/records?outcome=maybe",
        "/v1/records/has%20space",
        "/v1/proofs/inclusion?index=-1",
        "/v1/proofs/inclusion?index=0&tree_size=0",
        "/v1/proofs/inclusion",
        "/v1/proofs/consistency?from_size=0",
        f"/v1/proofs/consistency?from_size={2**53}",
        "/v1/checkpoints/latest?tenant=-x",
        "/v1/verify?tenant=",
        "/v1/export?tenant=a%20b",
    ],
)
async def test_a_bad_parameter_is_a_422_problem(api: Api, path: str) -> None:
    response = await api.http.get(path)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM


async def test_a_reveal_needs_a_reason(api: Api) -> None:
    sent = record()
    await api.receipts(sent)
    for body in ({}, {"reason": ""}, {"reason": "a\u0000b"}, {"reason": "r" * 501}):
        response = await api.http.post(f"/v1/records/{sent['id']}:reveal", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == PROBLEM


async def test_what_is_not_there_is_a_404_problem(api: Api) -> None:
    tenant = "nothing-here"
    for path in (
        "/v1/records/never-sent",
        f"/v1/checkpoints/latest?tenant={tenant}",
        f"/v1/proofs/inclusion?tenant={tenant}&index=0&tree_size=1",
        f"/v1/proofs/consistency?tenant={tenant}&from_size=1",
        f"/v1/export?tenant={tenant}",
    ):
        response = await api.http.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == PROBLEM
    issued = await api.http.post("/v1/checkpoints", params={"tenant": tenant})
    assert issued.status_code == 404
    revealed = await api.http.post("/v1/records/never-sent:reveal", json={"reason": "why"})
    assert revealed.status_code == 404
