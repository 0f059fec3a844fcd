"""What the audit log holds: records, the leaves they become, receipts, checkpoints, proofs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from datetime import datetime

    from outrigger.merkle import Node

Outcome: TypeAlias = Literal["success", "failure"]
OUTCOMES: tuple[Outcome, ...] = ("success", "failure")
DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit record, as a producer sends it (a CloudEvent with the audit attributes).

    `source` + `id` identify it: sending it again is a retry, answered with its first receipt.
    `sensitive` names paths in `data` (`card.number`, `items.*.ssn`) stored encrypted, with the
    key of `subject` when given (forgetting the subject erases them, and breaks no proof).
    """

    id: str
    source: str
    type: str
    time: datetime
    actor: str
    action: str
    resource: str
    outcome: Outcome
    tenant: str = DEFAULT_TENANT
    data: dict[str, Any] = field(default_factory=dict)
    sensitive: tuple[str, ...] = ()
    subject: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.id)


@dataclass(frozen=True, slots=True)
class Leaf:
    """A record as it is stored and hashed: `body` is the canonical JSON of the record with its
    sensitive fields already encrypted and `recorded_at` added; `hash` is its RFC 9162 leaf hash.
    """

    record: AuditRecord  # data as stored (sensitive fields encrypted)
    recorded_at: datetime
    body: bytes
    hash: bytes

    @property
    def key(self) -> tuple[str, str]:
        return self.record.key


@dataclass(frozen=True, slots=True)
class Appended:
    """Where a leaf went: its tenant's index, and whether it was there already (a retry)."""

    source: str
    id: str
    tenant: str
    index: int
    leaf_hash: bytes
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record read back: the leaf as stored, at its index in its tenant's tree."""

    index: int
    leaf: Leaf


@dataclass(frozen=True, slots=True)
class TreeHead:
    tenant: str
    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed tree head: `note` is the C2SP tlog-checkpoint signed note, as issued."""

    tenant: str
    size: int
    root: bytes
    issued_at: datetime
    note: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a producer keeps: where its record is, and a checkpoint that covers it (or None
    until the next one is issued)."""

    id: str
    source: str
    tenant: str
    index: int
    leaf_hash: bytes
    checkpoint: Checkpoint | None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class InclusionProof:
    tenant: str
    index: int
    tree_size: int
    leaf_hash: bytes
    hashes: list[bytes]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    tenant: str
    from_size: int
    to_size: int
    hashes: list[bytes]


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """A query: every given field must match; `before` (and, in a time window,
    `before_time`) is the cursor (newest first)."""

    tenant: str = DEFAULT_TENANT
    type: str | None = None
    actor: str | None = None
    resource: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None  # `from`, inclusive, on the record's `time`
    until: datetime | None = None  # `to`, exclusive
    before: int | None = None  # only records with a smaller index (the cursor)
    # in a window (`since` and/or `until`): only records with a smaller (time, index)
    before_time: datetime | None = None
    limit: int = 100

    @property
    def windowed(self) -> bool:
        """Whether `time` bounds the page: then it is ordered by (time, index)."""
        return self.since is not None or self.until is not None


@dataclass(frozen=True, slots=True)
class RecordPage:
    records: list[StoredRecord]
    next_before: int | None  # the cursor of the next page, None on the last one
    next_before_time: datetime | None = None  # its time, on a page of a time window


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The first place where the stored rows and the tree disagree."""

    index: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Verification:
    tenant: str
    size: int
    records_checked: int
    retained_from: int  # indexes below were dropped by retention; their hashes still count
    checkpoints_checked: int
    mismatch: Mismatch | None

    @property
    def ok(self) -> bool:
        return self.mismatch is None


ScannedRow: TypeAlias = (
    "tuple[int, bytes | None, bytes | None, str | None, str | None, str | None, str | None, "
    "datetime | None]"
)
"""One pairing of an index's leaf hash and a records row claiming it, as `verify` scans them:
`(index, leaf hash, body, type, actor, resource, outcome, time)`. The body is what was hashed; the
columns (`rules.columns`) are kept beside it for queries and must agree with it. The leaf hash is
None if the tree has none at the index; body and columns are None if no row claims it (dropped or
deleted). Plain tuples: verify reads a million of them."""

NodeHashes: TypeAlias = "dict[Node, bytes]"
