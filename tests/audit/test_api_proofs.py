"""Proofs and checkpoints over HTTP, on both backends, checked by the independent RFC 9162
verifier (`rfc9162.py`) against checkpoints whose signatures `outrigger.notes` verifies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from outrigger.notes import NoteVerifier
from outrigger.testing import unique
from tests.audit import rfc9162
from tests.audit.api_support import Api, opened, proves, record

if TYPE_CHECKING:
    import httpx


async def _get(api: Api, path: str, **params: Any) -> dict[str, Any]:
    response = await api.http.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _issue(api: Api, tenant: str) -> httpx.Response:
    return await api.http.post("/v1/checkpoints", params={"tenant": tenant})


async def test_every_receipt_proves_inclusion_in_its_checkpoint_and_in_later_ones(
    api: Api,
) -> None:
    tenant = unique("t")
    receipts: list[dict[str, Any]] = []
    for size in (1, 2, 3, 5, 8, 13):  # several shapes of tree, each batch its own checkpoint
        receipts += await api.receipts(*[record(tenant) for _ in range(size)])
    latest = await _get(api, "/v1/checkpoints/latest", tenant=tenant)
    _, final_size, final_root = opened(latest)
    assert final_size == len(receipts) == 32
    for receipt in receipts:
        _, size, root = opened(receipt["checkpoint"])
        at_receipt = await _get(
            api,
            "/v1/proofs/inclusion",
            tenant=tenant,
            index=receipt["index"],
            tree_size=size,
        )
        assert at_receipt["leaf_hash"] == receipt["leaf_hash"]
        assert proves(receipt, at_receipt, root)
        at_latest = await _get(api, "/v1/proofs/inclusion", tenant=tenant, index=receipt["index"])
        assert at_latest["tree_size"] == final_size
        assert proves(receipt, at_latest, final_root)
        assert not proves(receipt, at_latest, root) or size == final_size


async def test_a_tampered_proof_or_another_leaf_does_not_verify(api: Api) -> None:
    tenant = unique("t")
    receipts = await api.receipts(*[record(tenant) for _ in range(7)])
    _, _, root = opened(receipts[0]["checkpoint"])
    proof = await _get(api, "/v1/proofs/inclusion", tenant=tenant, index=3, tree_size=7)
    assert proves(receipts[3], proof, root)
    assert not proves(receipts[4], proof, root)
    broken = {**proof, "hashes": [proof["hashes"][0][::-1], *proof["hashes"][1:]]}
    assert not proves(receipts[3], broken, root)


async def test_every_checkpoint_is_consistent_with_every_later_one(api: Api) -> None:
    tenant = unique("t")
    checkpoints: list[tuple[int, bytes]] = []
    for size in (1, 1, 2, 4, 3, 6):
        [*_, last] = await api.receipts(*[record(tenant) for _ in range(size)])
        _, tree_size, root = opened(last["checkpoint"])
        checkpoints.append((tree_size, root))
    for n, (old_size, old_root) in enumerate(checkpoints):
        for new_size, new_root in checkpoints[n:]:
            proof = await _get(
                api,
                "/v1/proofs/consistency",
                tenant=tenant,
                from_size=old_size,
                to_size=new_size,
            )
            hashes = [bytes.fromhex(h) for h in proof["hashes"]]
            assert rfc9162.verify_consistency(old_size, new_size, old_root, new_root, hashes)
            if old_size != new_size:
                assert not rfc9162.verify_consistency(
                    old_size, new_size, new_root, new_root, hashes
                )
    latest = await _get(api, "/v1/proofs/consistency", tenant=tenant, from_size=1)
    assert latest["to_size"] == checkpoints[-1][0]


async def test_a_checkpoint_roots_the_records_as_stored(api: Api) -> None:
    tenant = unique("t")
    receipts = await api.receipts(*[record(tenant) for _ in range(6)])
    _, size, root = opened(receipts[-1]["checkpoint"])
    leaves = [bytes.fromhex(r["leaf_hash"]) for r in receipts]
    assert rfc9162.mth(leaves[:size]) == root


async def test_checkpoints_are_issued_on_demand_once_per_tree_size(api: Api) -> None:
    tenant = unique("t")
    [receipt] = await api.receipts(record(tenant))
    again = await _issue(api, tenant)
    assert again.status_code == 201
    assert again.json() == receipt["checkpoint"]  # the tree did not grow: the same checkpoint
    await api.receipts(record(tenant))
    grown = (await _issue(api, tenant)).json()
    assert grown["tree_size"] == 2
    latest = await _get(api, "/v1/checkpoints/latest", tenant=tenant)
    assert latest == grown
    verifier = NoteVerifier.parse(latest["verifier_key"])
    assert verifier.name == "outrigger.audit"
    body = verifier.open(latest["note"])
    assert body.startswith(f"outrigger.audit/{tenant}\n2\n")


async def test_proofs_beyond_the_tree_are_404(api: Api) -> None:
    tenant = unique("t")
    await api.receipts(record(tenant), record(tenant))
    for path, params, start in (
        ("/v1/proofs/inclusion", {"index": 2, "tree_size": 2}, "leaf 2 is not in"),
        ("/v1/proofs/inclusion", {"index": 0, "tree_size": 3}, "tree_size 3 is beyond"),
        ("/v1/proofs/inclusion", {"index": 2}, "leaf 2 is not in"),
        ("/v1/proofs/consistency", {"from_size": 3}, "no prefix of size 3"),
        ("/v1/proofs/consistency", {"from_size": 2, "to_size": 1}, "no prefix of size 2"),
        ("/v1/proofs/consistency", {"from_size": 1, "to_size": 3}, "to_size 3 is beyond"),
    ):
        response = await api.http.get(path, params={"tenant": tenant, **params})
        assert response.status_code == 404, (path, params)
        problem = response.json()
        assert problem["tenant"] == tenant
        assert start in problem["detail"]
        assert f"the tree of tenant {tenant!r}" in problem["detail"]
        assert "'s tree" not in problem["detail"]
