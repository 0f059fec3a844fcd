"""What `AuditClient` returns: the audit service's answers as frozen dataclasses.

Each matches the JSON schema of the same name in the service's OpenAPI document field for field,
with `date-time` strings as aware `datetime`s. Hashes stay as the service writes them, lowercase
hex (`bytes.fromhex` gives the digest); `data` is the record's JSON object, its sensitive paths
masked unless the record was revealed. An export is a sequence of `ExportLine`s: a
`ExportedCheckpoint`, then an `ExportedRecord` per record, each with its inclusion proof
against that checkpoint (`outrigger.clients.audit_verify` checks them offline).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 (pydantic reads the annotations at runtime)
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import Field

Outcome: TypeAlias = Literal["success", "failure"]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A record as stored: what its producer sent, plus when it was recorded, its index in its
    tenant's tree and its leaf hash (the hash of its stored body, which `leaf_hash` in an
    export also names)."""

    id: str
    source: str
    type: str
    time: datetime
    actor: str
    action: str
    resource: str
    outcome: Outcome
    tenant: str
    data: dict[str, Any]
    sensitive: tuple[str, ...]
    subject: str | None
    recorded_at: datetime
    index: int
    leaf_hash: str


@dataclass(frozen=True, slots=True)
class RecordPage:
    """A page of a query, newest first; `next_cursor` asks for the next page (None: the last)."""

    records: tuple[AuditRecord, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed tree head: the tenant's tree of `tree_size` records has root `root_hash`.
    `note` is the C2SP tlog-checkpoint signed note; `verifier_key` the key the service signs
    with (check it against one you got out of band before trusting it)."""

    tenant: str
    tree_size: int
    root_hash: str
    issued_at: datetime
    note: str
    verifier_key: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where a record went: its tenant's tree at `index`, with `leaf_hash`, and a checkpoint
    covering it (None until one is issued). `duplicate` is True when the record (same `source`
    and `id`) was stored before: the receipt is the first one's."""

    id: str
    source: str
    tenant: str
    index: int
    leaf_hash: str
    checkpoint: Checkpoint | None
    duplicate: bool


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """RFC 9162 2.1.3: `hashes` lead from leaf `index` to the root of the tree of `tree_size`."""

    tenant: str
    index: int
    tree_size: int
    leaf_hash: str
    hashes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """RFC 9162 2.1.4: `hashes` show the tree of `from_size` is a prefix of that of `to_size`."""

    tenant: str
    from_size: int
    to_size: int
    hashes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The first place the stored rows and the tree disagree (`index` None: not one record)."""

    index: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Verification:
    """What the service found recomputing a tenant's tree from its rows: `ok`, or the first
    `mismatch`. Records below `retained_from` were dropped by retention on purpose."""

    tenant: str
    tree_size: int
    records_checked: int
    retained_from: int
    checkpoints_checked: int
    ok: bool
    mismatch: Mismatch | None


@dataclass(frozen=True, slots=True)
class ExportedCheckpoint:
    """An export's checkpoint line: the records after it prove inclusion against its root."""

    kind: Literal["checkpoint"]
    tenant: str
    tree_size: int
    root_hash: str
    issued_at: datetime
    note: str
    verifier_key: str


@dataclass(frozen=True, slots=True)
class ExportedRecord:
    """An export's record line: `leaf` is the stored body (canonical JSON) as a string; its
    UTF-8 bytes hash to `leaf_hash`, which `proof` leads to the checkpoint's root."""

    kind: Literal["record"]
    index: int
    leaf: str
    leaf_hash: str
    proof: tuple[str, ...]


ExportLine: TypeAlias = Annotated[ExportedCheckpoint | ExportedRecord, Field(discriminator="kind")]
"""One line of `GET /v1/export`, told apart by its `kind`."""
