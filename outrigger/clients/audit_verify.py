"""Checking the audit service's answers without trusting it: checkpoints, proofs, whole exports.

    key = "outrigger.audit+1a2b3c4d+AXo..."          # the service's verifier key, got out of band
    result = verify_export(open("audit.ndjson", "rb"), key)
    if not result.ok:
        print(f"line {result.line}: {result.reason}")

Everything here is the arithmetic of `outrigger.merkle` (RFC 9162) and `outrigger.notes` (C2SP
signed checkpoints, Ed25519) over what the service sent: the key is the one given, never the
`verifier_key` a checkpoint carries, and every leaf is hashed from its bytes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import TypeAdapter, ValidationError

from outrigger.clients.audit_models import (
    Checkpoint,
    ConsistencyProof,
    ExportedCheckpoint,
    ExportedRecord,
    ExportLine,
    InclusionProof,
)
from outrigger.merkle import leaf_hash, verify_consistency, verify_inclusion
from outrigger.notes import NoteError, NoteVerifier, open_checkpoint

if TYPE_CHECKING:
    from collections.abc import Iterable

HASH_BYTES = 32


@functools.cache
def _line_adapter() -> TypeAdapter[ExportLine]:
    return TypeAdapter(ExportLine)


def read_export_line(text: str | bytes) -> ExportLine:
    """One line of an export, parsed; ValueError saying what does not fit."""
    try:
        return _line_adapter().validate_json(text)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the line"
        raise ValueError(f"not an export line: {where}: {first['msg']}") from None


def checkpoint_root(checkpoint: Checkpoint | ExportedCheckpoint, public_key: str) -> bytes:
    """The root hash `checkpoint` stands for, once its note is signed by `public_key` (a
    verifier key, `<name>+<hash>+<base64 key>`) and says what its fields say (its tenant's
    origin, its tree size and root); NoteError saying what does not hold otherwise."""
    origin, size, root = open_checkpoint(checkpoint.note, NoteVerifier.parse(public_key))
    if not origin.endswith(f"/{checkpoint.tenant}"):
        raise NoteError(
            f"the checkpoint of tenant {checkpoint.tenant!r} is signed for origin {origin!r}"
        )
    if size != checkpoint.tree_size:
        raise NoteError(
            f"the checkpoint says tree_size {checkpoint.tree_size}, its signed note {size}"
        )
    if _hash(checkpoint.root_hash) != root:
        raise NoteError("the checkpoint's root_hash is not the root its signed note names")
    return root


def inclusion_holds(proof: InclusionProof, root: bytes) -> bool:
    """True if `proof` leads from its leaf hash to `root` (RFC 9162 2.1.3.2)."""
    try:
        hashes = [_hash(value) for value in proof.hashes]
        leaf = _hash(proof.leaf_hash)
    except ValueError:
        return False
    return verify_inclusion(proof.index, proof.tree_size, leaf, hashes, root)


def consistency_holds(proof: ConsistencyProof, from_root: bytes, to_root: bytes) -> bool:
    """True if `proof` shows the tree with `from_root` is a prefix of the tree with `to_root`
    (RFC 9162 2.1.4.2): nothing recorded before was changed or removed since."""
    try:
        hashes = [_hash(value) for value in proof.hashes]
    except ValueError:
        return False
    return verify_consistency(proof.from_size, proof.to_size, from_root, to_root, hashes)


@dataclass(frozen=True, slots=True)
class ExportVerification:
    """What checking an export found. `ok`, or `line` (from 1) is the first line that fails,
    `index` its record's index (None for another line) and `reason` why. `tenant`, `tree_size`
    and `root_hash` are those of the last checkpoint line checked."""

    ok: bool
    tenant: str | None
    tree_size: int | None
    root_hash: str | None
    checkpoints_checked: int
    records_checked: int
    line: int | None = None
    index: int | None = None
    reason: str | None = None


class _Failed(Exception):
    def __init__(self, reason: str, index: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index


@dataclass
class _Export:
    """The state of a check: the checkpoint the next records prove against, and progress."""

    key: str
    checkpoint: ExportedCheckpoint | None = None
    root: bytes = b""
    last_index: int = -1
    checkpoints: int = 0
    records: int = 0

    def take(self, line: ExportLine) -> None:
        if isinstance(line, ExportedCheckpoint):
            self.take_checkpoint(line)
        else:
            self.take_record(line)

    def take_checkpoint(self, line: ExportedCheckpoint) -> None:
        try:
            root = checkpoint_root(line, self.key)
        except NoteError as exc:
            raise _Failed(f"checkpoint: {exc}") from None
        if self.checkpoint is not None and line.tenant != self.checkpoint.tenant:
            raise _Failed(
                f"a checkpoint of tenant {line.tenant!r} in an export of {self.checkpoint.tenant!r}"
            )
        self.checkpoint, self.root = line, root
        self.checkpoints += 1

    def take_record(self, line: ExportedRecord) -> None:
        index, checkpoint = line.index, self.checkpoint
        if checkpoint is None:
            raise _Failed("a record before any checkpoint line", index)
        if index <= self.last_index:
            raise _Failed(
                f"index {index} after index {self.last_index}: an export lists each record "
                "once, oldest first",
                index,
            )
        if index >= checkpoint.tree_size:
            raise _Failed(
                f"index {index} is beyond the checkpoint's tree of {checkpoint.tree_size} records",
                index,
            )
        body = line.leaf.encode()
        digest = leaf_hash(body)
        try:
            claimed = _hash(line.leaf_hash)
            proof = [_hash(value) for value in line.proof]
        except ValueError as exc:
            raise _Failed(str(exc), index) from None
        if digest != claimed:
            raise _Failed(
                f"the leaf does not hash to its leaf_hash (it hashes to {digest.hex()})", index
            )
        tenant = _tenant_of(body)
        if tenant != checkpoint.tenant:
            raise _Failed(
                f"the leaf is a record of tenant {tenant!r}, not {checkpoint.tenant!r}"
                if tenant is not None
                else "the leaf is not an audit record (a JSON object with a tenant)",
                index,
            )
        if not verify_inclusion(index, checkpoint.tree_size, digest, proof, self.root):
            raise _Failed(
                f"the inclusion proof does not lead to the root of the checkpoint's tree of "
                f"{checkpoint.tree_size} records",
                index,
            )
        self.last_index = index
        self.records += 1

    def result(self, **failure: Any) -> ExportVerification:
        checkpoint = self.checkpoint
        return ExportVerification(
            ok=not failure,
            tenant=checkpoint.tenant if checkpoint else None,
            tree_size=checkpoint.tree_size if checkpoint else None,
            root_hash=self.root.hex() if checkpoint else None,
            checkpoints_checked=self.checkpoints,
            records_checked=self.records,
            **failure,
        )


def verify_export(lines: Iterable[str | bytes | ExportLine], public_key: str) -> ExportVerification:
    """Checks an export (`GET /v1/export`, `outrigger audit export`) line by line, stopping at
    the first line that fails:

    - each checkpoint line is signed by `public_key` and agrees with its note (`checkpoint_root`);
    - each record line's `leaf` hashes to its `leaf_hash` (RFC 9162 leaf hash of its UTF-8
      bytes), belongs to the checkpoint's tenant, comes after the previous record, and its
      `proof` leads from that hash at its `index` to the root of the checkpoint above it.

    `lines` are the file's lines (text or bytes; blank ones are skipped, and counted) or lines
    already parsed. A malformed `public_key` raises NoteError before any line is read.
    """
    NoteVerifier.parse(public_key)
    export = _Export(public_key)
    number = 0
    for number, text in enumerate(lines, start=1):
        if isinstance(text, ExportedCheckpoint | ExportedRecord):
            line = text
        elif not text.strip():
            continue
        else:
            try:
                line = read_export_line(text)
            except ValueError as exc:
                return export.result(line=number, reason=str(exc))
        try:
            export.take(line)
        except _Failed as failed:
            return export.result(line=number, index=failed.index, reason=failed.reason)
    if export.checkpoint is None:
        return export.result(line=max(number, 1), reason="the export has no checkpoint line")
    return export.result()


def _hash(value: str) -> bytes:
    try:
        digest = bytes.fromhex(value)
    except ValueError:
        digest = b""
    if len(digest) != HASH_BYTES or value != digest.hex():
        raise ValueError(f"{value[:80]!r} is not a SHA-256 hash in lowercase hex")
    return digest


def _tenant_of(body: bytes) -> str | None:
    try:
        leaf = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    tenant = leaf.get("tenant") if isinstance(leaf, dict) else None
    return tenant if isinstance(tenant, str) else None
