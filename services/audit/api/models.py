"""The JSON the API takes and gives. Requests refuse unknown fields, so a typo is a 422.

Every rule of `domain.rules` a schema can state is stated here too, so a client (and
schemathesis) knows in advance what is accepted; the use cases check them all again.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Discriminator, Field, Tag

from outrigger.http import JsonObjectField
from services.audit.domain.models import (
    DEFAULT_TENANT,
    AuditRecord,
    Checkpoint,
    ConsistencyProof,
    InclusionProof,
    Receipt,
    StoredRecord,
    Verification,
)
from services.audit.domain.rules import (
    MAX_RECORDS_PER_REQUEST,
    MAX_SENSITIVE_PATHS,
    MAX_TEXT_LENGTH,
    TENANT_PATTERN,
    TOKEN_PATTERN,
)
from services.audit.usecases import checkpoint_document

TEXT_PATTERN = rf"^[^\x00-\x1f\x7f-\x9f]{{1,{MAX_TEXT_LENGTH}}}$"
"""Actors, actions, resources, reasons: 1-500 characters, no control character."""
PATH_PATTERN = r"^[^.]+(\.[^.]+)*$"
Token = Annotated[str, Field(pattern=TOKEN_PATTERN, examples=["order-7"])]
Text = Annotated[str, Field(pattern=TEXT_PATTERN)]
FieldPath = Annotated[str, Field(pattern=PATH_PATTERN, max_length=200, examples=["card.number"])]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordIn(Request):
    id: Token = Field(description="Unique with `source`: sending it again is a retry.")
    source: Token = Field(description="Who sends it (a service, a URI).")
    type: Token = Field(examples=["billing.invoice.voided"])
    time: AwareDatetime | None = Field(None, description="When it happened (default: now).")
    actor: Text = Field(description="Who did it: a token subject, a user, a service.")
    action: Text
    resource: Text = Field(description="What it was done to.")
    outcome: Literal["success", "failure"] = "success"
    tenant: str = Field(DEFAULT_TENANT, pattern=TENANT_PATTERN)
    data: JsonObjectField = Field(default_factory=dict, description="At most 64 KiB of JSON.")
    sensitive: list[FieldPath] = Field(
        default_factory=list,
        max_length=MAX_SENSITIVE_PATHS,
        description="Paths in `data` stored encrypted (`card.number`, `items.*.ssn`) and "
        "masked when read; `:reveal` shows them.",
    )
    subject: Token | None = Field(
        None, description="Whose personal data `sensitive` holds: encrypted with their own key."
    )

    def to_record(self) -> AuditRecord:
        return AuditRecord(
            id=self.id,
            source=self.source,
            type=self.type,
            time=self.time or datetime.now(UTC),
            actor=self.actor,
            action=self.action,
            resource=self.resource,
            outcome=self.outcome,
            tenant=self.tenant,
            data=self.data,
            sensitive=tuple(self.sensitive),
            subject=self.subject,
        )


class RecordsIn(Request):
    records: list[RecordIn] = Field(min_length=1, max_length=MAX_RECORDS_PER_REQUEST)


def _shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "records" in value else "one"


RecordsBody = Annotated[
    Annotated[RecordIn, Tag("one")] | Annotated[RecordsIn, Tag("batch")], Discriminator(_shape)
]


class CheckpointOut(BaseModel):
    tenant: str
    tree_size: int
    root_hash: str = Field(description="SHA-256, lowercase hex.")
    issued_at: datetime
    note: str = Field(description="The C2SP tlog-checkpoint signed note, as issued.")
    verifier_key: str = Field(description="The key that verifies `note` (`name+hash+base64`).")

    @classmethod
    def of(cls, checkpoint: Checkpoint, verifier_key: str) -> "CheckpointOut":
        return cls.model_construct(**checkpoint_document(checkpoint, verifier_key))


class ReceiptOut(BaseModel):
    id: str
    source: str
    tenant: str
    index: int = Field(description="The record's leaf index in its tenant's tree.")
    leaf_hash: str
    checkpoint: CheckpointOut | None = Field(description="The first checkpoint covering it.")
    duplicate: bool = Field(description="Stored before: this is its first receipt again.")

    @classmethod
    def of(cls, receipt: Receipt, verifier_key: str) -> "ReceiptOut":
        checkpoint = receipt.checkpoint
        return cls.model_construct(
            id=receipt.id,
            source=receipt.source,
            tenant=receipt.tenant,
            index=receipt.index,
            leaf_hash=receipt.leaf_hash.hex(),
            checkpoint=None if checkpoint is None else CheckpointOut.of(checkpoint, verifier_key),
            duplicate=receipt.duplicate,
        )


class ReceiptsOut(BaseModel):
    receipts: list[ReceiptOut]


class RecordOut(BaseModel):
    id: str
    source: str
    type: str
    time: datetime
    actor: str
    action: str
    resource: str
    outcome: Literal["success", "failure"]
    tenant: str
    data: dict[str, Any]
    sensitive: list[str]
    subject: str | None
    recorded_at: datetime
    index: int
    leaf_hash: str

    @classmethod
    def of(cls, stored: StoredRecord) -> "RecordOut":
        record = stored.leaf.record
        return cls.model_construct(
            id=record.id,
            source=record.source,
            type=record.type,
            time=record.time,
            actor=record.actor,
            action=record.action,
            resource=record.resource,
            outcome=record.outcome,
            tenant=record.tenant,
            data=record.data,
            sensitive=list(record.sensitive),
            subject=record.subject,
            recorded_at=stored.leaf.recorded_at,
            index=stored.index,
            leaf_hash=stored.leaf.hash.hex(),
        )


class RecordPageOut(BaseModel):
    records: list[RecordOut]
    next_cursor: str | None = Field(description="`cursor` of the next page; null on the last.")


class RevealIn(Request):
    reason: Text = Field(description="Why the record is revealed; kept in the audit log.")


class InclusionProofOut(BaseModel):
    tenant: str
    index: int
    tree_size: int
    leaf_hash: str
    hashes: list[str] = Field(description="RFC 9162 inclusion path, leaf to root, hex.")

    @classmethod
    def of(cls, proof: InclusionProof) -> "InclusionProofOut":
        return cls.model_construct(
            tenant=proof.tenant,
            index=proof.index,
            tree_size=proof.tree_size,
            leaf_hash=proof.leaf_hash.hex(),
            hashes=[h.hex() for h in proof.hashes],
        )


class ConsistencyProofOut(BaseModel):
    tenant: str
    from_size: int
    to_size: int
    hashes: list[str] = Field(description="RFC 9162 consistency proof, hex.")

    @classmethod
    def of(cls, proof: ConsistencyProof) -> "ConsistencyProofOut":
        return cls.model_construct(
            tenant=proof.tenant,
            from_size=proof.from_size,
            to_size=proof.to_size,
            hashes=[h.hex() for h in proof.hashes],
        )


class MismatchOut(BaseModel):
    index: int | None = Field(description="The first record at fault; null if none is alone.")
    reason: str


class VerificationOut(BaseModel):
    tenant: str
    tree_size: int
    records_checked: int
    retained_from: int = Field(description="Records below were dropped by retention.")
    checkpoints_checked: int
    ok: bool
    mismatch: MismatchOut | None

    @classmethod
    def of(cls, result: Verification) -> "VerificationOut":
        mismatch = result.mismatch
        return cls(
            tenant=result.tenant,
            tree_size=result.size,
            records_checked=result.records_checked,
            retained_from=result.retained_from,
            checkpoints_checked=result.checkpoints_checked,
            ok=result.ok,
            mismatch=None
            if mismatch is None
            else MismatchOut(index=mismatch.index, reason=mismatch.reason),
        )
