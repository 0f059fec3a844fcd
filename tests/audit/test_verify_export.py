"""`outrigger.clients.audit_verify`: an export, a checkpoint or a proof checked offline, each kind
of tampering caught and located. The exports are built in the test with the kit's tree; the
proofs of the untampered one also satisfy the independent verifier (`rfc9162.py`)."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import orjson
import pytest

from outrigger.clients import ExportedRecord, verify_export
from outrigger.clients.audit_models import Checkpoint, ConsistencyProof, InclusionProof
from outrigger.clients.audit_verify import (
    checkpoint_root,
    consistency_holds,
    inclusion_holds,
    read_export_line,
)
from outrigger.clients.base import decode
from outrigger.notes import NoteError, NoteSigner
from tests.audit import rfc9162
from tests.audit.export_support import ORIGIN, Log, leaf_body

SIZE = 13  # no power of two: proofs of every shape


@pytest.fixture
def log() -> Log:
    return Log.of("acme", SIZE)


def edited(line: str, **changes: Any) -> str:
    return orjson.dumps({**orjson.loads(line), **changes}).decode()


def test_an_untampered_export_verifies_and_says_what_it_checked(log: Log) -> None:
    lines = log.export()
    result = verify_export(lines, log.signer.verifier_key)
    assert result.ok, result.reason
    assert (result.tenant, result.tree_size, result.root_hash) == ("acme", SIZE, log.root.hex())
    assert (result.checkpoints_checked, result.records_checked) == (1, SIZE)
    assert (result.line, result.index, result.reason) == (None, None, None)

    hashes = [rfc9162.leaf(body) for body in log.leaves]
    assert rfc9162.mth(hashes) == log.root
    for line in lines[1:]:
        record = orjson.loads(line)
        index, proof = record["index"], [bytes.fromhex(h) for h in record["proof"]]
        assert rfc9162.verify_inclusion(index, SIZE, hashes[index], proof, log.root)


def test_bytes_lines_blank_lines_a_range_and_parsed_lines_verify_too(log: Log) -> None:
    lines = [line.encode() + b"\n" for line in log.export(first=4, end=9)] + [b"\n"]
    assert verify_export(lines, log.signer.verifier_key).records_checked == 5
    parsed = [read_export_line(line) for line in log.export()]
    assert verify_export(parsed, log.signer.verifier_key).ok
    only_checkpoint = verify_export(log.export(first=SIZE), log.signer.verifier_key)
    assert (only_checkpoint.ok, only_checkpoint.records_checked) == (True, 0)


def test_an_edited_leaf_is_named_by_its_line_and_index(log: Log) -> None:
    lines = log.export()
    body = orjson.loads(lines[6])["leaf"].replace('"actor":"ada"', '"actor":"eve"')
    lines[6] = edited(lines[6], leaf=body)
    result = verify_export(lines, log.signer.verifier_key)
    assert not result.ok
    assert (result.line, result.index) == (7, 5)
    assert result.reason is not None
    assert result.reason.startswith("the leaf does not hash to its leaf_hash")
    assert result.records_checked == 5


def test_an_edited_leaf_with_its_hash_recomputed_fails_its_proof(log: Log) -> None:
    lines = log.export()
    body = leaf_body("acme", 3, outcome="failure")
    lines[4] = edited(lines[4], leaf=body.decode(), leaf_hash=rfc9162.leaf(body).hex())
    result = verify_export(lines, log.signer.verifier_key)
    assert (result.ok, result.line, result.index) == (False, 5, 3)
    assert "inclusion proof does not lead to the root" in str(result.reason)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda proof: [proof[1], proof[0], *proof[2:]], id="swapped"),
        pytest.param(lambda proof: proof[:-1], id="shortened"),
        pytest.param(lambda proof: [*proof, proof[0]], id="lengthened"),
        pytest.param(lambda proof: ["00" * 32, *proof[1:]], id="replaced"),
    ],
)
def test_an_edited_proof_is_named_by_its_line(log: Log, tamper: Any) -> None:
    lines = log.export()
    lines[9] = edited(lines[9], proof=tamper(orjson.loads(lines[9])["proof"]))
    result = verify_export(lines, log.signer.verifier_key)
    assert (result.ok, result.line, result.index) == (False, 10, 8)
    assert "inclusion proof" in str(result.reason)


def test_a_proof_hash_that_is_not_a_hash_is_named(log: Log) -> None:
    lines = log.export()
    lines[2] = edited(lines[2], proof=["ABCD" * 16, *orjson.loads(lines[2])["proof"][1:]])
    result = verify_export(lines, log.signer.verifier_key)
    assert (result.line, result.index) == (3, 1)
    assert "not a SHA-256 hash in lowercase hex" in str(result.reason)


def test_a_wrong_key_fails_the_checkpoint_on_line_1(log: Log) -> None:
    other = NoteSigner.generate(ORIGIN)
    result = verify_export(log.export(), other.verifier_key)
    assert (result.ok, result.line, result.index) == (False, 1, None)
    assert result.reason == f"checkpoint: the note carries no signature of {ORIGIN}"
    assert (result.checkpoints_checked, result.records_checked) == (0, 0)


def test_a_bad_signature_fails_the_checkpoint_on_line_1(log: Log) -> None:
    lines = log.export()
    checkpoint = orjson.loads(lines[0])
    body, _, signature = checkpoint["note"].partition("\n\n")
    name, _, encoded = signature.removesuffix("\n").rpartition(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    forged = f"{body}\n\n{name} {base64.b64encode(bytes(raw)).decode()}\n"
    lines[0] = edited(lines[0], note=forged)
    result = verify_export(lines, log.signer.verifier_key)
    assert (result.ok, result.line) == (False, 1)
    assert result.reason == f"checkpoint: the signature of {ORIGIN} does not verify"


def test_a_checkpoint_whose_fields_are_not_its_signed_notes_is_refused(log: Log) -> None:
    lines, key = log.export(), log.signer.verifier_key
    bigger = verify_export([edited(lines[0], tree_size=SIZE + 1), *lines[1:]], key)
    assert bigger.line == 1
    assert f"tree_size {SIZE + 1}, its signed note {SIZE}" in str(bigger.reason)
    other_root = verify_export([edited(lines[0], root_hash="11" * 32), *lines[1:]], key)
    assert "root_hash is not the root its signed note names" in str(other_root.reason)
    other_tenant = verify_export([edited(lines[0], tenant="globex")], key)
    assert "signed for origin 'outrigger.audit/acme'" in str(other_tenant.reason)
    # a true checkpoint of another tree: the records' proofs do not lead to its root
    smaller = Log.of("acme", 5, log.signer).export(end=0)
    result = verify_export([*smaller, *lines[1:]], log.signer.verifier_key)
    assert (result.line, result.index) == (2, 0)
    assert "inclusion proof does not lead to the root" in str(result.reason)
    beyond = verify_export([*smaller, *lines[6:]], log.signer.verifier_key)
    assert (beyond.line, beyond.index) == (2, 5)
    assert "beyond the checkpoint's tree of 5 records" in str(beyond.reason)


def test_reordered_repeated_or_foreign_records_are_named(log: Log) -> None:
    lines = log.export()
    swapped = [lines[0], lines[1], lines[3], lines[2], *lines[4:]]
    result = verify_export(swapped, log.signer.verifier_key)
    assert (result.line, result.index) == (4, 1)
    assert "index 1 after index 2" in str(result.reason)
    repeated = verify_export([*lines[:3], lines[2]], log.signer.verifier_key)
    assert (repeated.line, repeated.index) == (4, 1)

    globex = Log.of("globex", SIZE, log.signer)
    foreign = verify_export([lines[0], globex.export()[1]], log.signer.verifier_key)
    assert (foreign.line, foreign.index) == (2, 0)
    assert foreign.reason == "the leaf is a record of tenant 'globex', not 'acme'"


def test_lines_that_are_not_an_export_are_named() -> None:
    log = Log.of("acme", 2)
    key = log.signer.verifier_key
    lines = log.export()
    assert verify_export([], key).reason == "the export has no checkpoint line"
    assert verify_export(lines[1:], key).reason == "a record before any checkpoint line"
    not_json = verify_export([lines[0], "{oops"], key)
    assert not_json.line == 2
    assert str(not_json.reason).startswith("not an export line")
    unknown = verify_export([lines[0], '{"kind": "gossip"}'], key)
    assert (unknown.line, unknown.ok) == (2, False)
    leaf_not_json = verify_export([lines[0], edited(lines[1], leaf="plain text")], key)
    assert leaf_not_json.line == 2


def test_a_malformed_key_is_refused_before_reading() -> None:
    with pytest.raises(NoteError, match="verifier key reads"):
        verify_export(iter(()), "not-a-key")


def test_checkpoints_and_proofs_answered_by_the_service_are_checked_offline(log: Log) -> None:
    key = log.signer.verifier_key
    checkpoint = decode(Checkpoint, orjson.dumps(log.checkpoint()), "the test")
    assert checkpoint_root(checkpoint, key) == log.root
    with pytest.raises(NoteError):
        checkpoint_root(checkpoint, NoteSigner.generate(ORIGIN).verifier_key)

    leaf = rfc9162.leaf(log.leaves[7]).hex()
    proof = InclusionProof("acme", 7, SIZE, leaf, tuple(log.proof(7)))
    assert inclusion_holds(proof, log.root)
    assert not inclusion_holds(replace(proof, index=6), log.root)
    assert not inclusion_holds(replace(proof, leaf_hash="zz"), log.root)

    old_root = Log("acme", log.signer, [])
    old_root.append(*log.leaves[:5])
    consistency = ConsistencyProof("acme", 5, SIZE, tuple(log.consistency(5, SIZE)))
    assert consistency_holds(consistency, old_root.root, log.root)
    assert not consistency_holds(consistency, log.root, log.root)
    assert not consistency_holds(replace(consistency, hashes=("xyz",)), old_root.root, log.root)


def test_an_exported_record_parses_into_its_model(log: Log) -> None:
    parsed = read_export_line(log.export()[3])
    assert isinstance(parsed, ExportedRecord)
    assert (parsed.index, parsed.leaf.encode()) == (2, log.leaves[2])
