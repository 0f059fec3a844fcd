"""The audit service's use cases: every record, query, reveal and proof passes here once,
whatever carried it (HTTP, the queue, the CLI through the SDK).

Records are checked with `domain.rules` (the only place: the adapters store and fetch), their
sensitive fields encrypted, turned into leaves (`rules.leaf_of`) and appended in one transaction
per batch. A retried record (same `source` + `id`) is not stored again: it answers the index and
leaf hash stored first. HTTP writes also issue a checkpoint covering their batch, so every
receipt carries one; the queue relies on the checkpoint loop.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from outrigger import merkle
from outrigger.errors import InvalidInput, NotFound, OutriggerError
from services.audit.domain import errors
from services.audit.domain import rules as check
from services.audit.domain.models import (
    AuditRecord,
    ConsistencyProof,
    InclusionProof,
    Receipt,
    RecordPage,
    StoredRecord,
)
from services.audit.metrics import BATCH_SIZE, INGEST_LAG, INGESTED, REVEALS

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from services.audit.domain.models import Appended, Checkpoint, RecordFilter
    from services.audit.domain.port import AuditLog
    from services.audit.metrics import AuditMetrics
    from services.audit.usecases.checkpoints import Checkpoints
    from services.audit.usecases.fields import SensitiveFields

Path = Literal["http", "queue"]
SOURCE = "audit"
REVEALED_TYPE = "audit.record.revealed"
FORGOTTEN_TYPE = "audit.subject.forgotten"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: the token's subject."""

    subject: str


class AuditService:
    """The use cases of the HTTP API and of the queue consumer."""

    def __init__(
        self,
        log: AuditLog,
        fields: SensitiveFields,
        checkpoints: Checkpoints,
        metrics: AuditMetrics,
    ) -> None:
        self.log = log
        self.fields = fields
        self.checkpoints = checkpoints
        self.metrics = metrics

    async def record(self, records: Sequence[AuditRecord]) -> list[Receipt]:
        """Stores 1-1,000 records (all or nothing) and answers one receipt each, in order, with
        the first checkpoint covering it (issued now if needed)."""
        try:
            check.check_batch(records)
        except OutriggerError:
            INGESTED.labels("http", "rejected").inc(len(records))
            raise
        appended = await self._append(records, "http")
        tenants = {item.tenant for item in appended}
        for tenant in sorted(tenants):
            await self.checkpoints.issue(tenant)
        covering: dict[tuple[str, int], Checkpoint | None] = {}
        for tenant in tenants:
            indexes = [item.index for item in appended if item.tenant == tenant]
            for index, checkpoint in (await self.checkpoints.covering(tenant, indexes)).items():
                covering[tenant, index] = checkpoint
        return [
            Receipt(
                item.id,
                item.source,
                item.tenant,
                item.index,
                item.leaf_hash,
                covering[item.tenant, item.index],
                item.duplicate,
            )
            for item in appended
        ]

    async def ingest(self, records: Sequence[AuditRecord]) -> list[Appended | InvalidInput]:
        """Stores the valid records of a queue batch in one transaction; an invalid one answers
        its error instead (and is not stored), in its place."""
        problems = [_problem(record) for record in records]
        valid = [record for record, problem in zip(records, problems, strict=True) if not problem]
        INGESTED.labels("queue", "rejected").inc(len(records) - len(valid))
        appended = iter(await self._append(valid, "queue") if valid else [])
        return [problem or next(appended) for problem in problems]

    def rejected(self, path: Path, count: int = 1) -> None:
        """Counts records refused before they reached a use case (a message of another shape)."""
        INGESTED.labels(path, "rejected").inc(count)

    async def _append(self, records: Sequence[AuditRecord], path: Path) -> list[Appended]:
        protected = await self.fields.protect(records)
        now = datetime.now(UTC)
        leaves = [check.leaf_of(record, now) for record in protected]
        appended = await self.log.append(leaves)
        committed = time.time()
        BATCH_SIZE.labels(path).observe(len(leaves))
        stored = [item for item in appended if not item.duplicate]
        INGESTED.labels(path, "stored").inc(len(stored))
        INGESTED.labels(path, "duplicate").inc(len(appended) - len(stored))
        for record, item in zip(records, appended, strict=True):
            if not item.duplicate:
                INGEST_LAG.observe(max(0.0, committed - record.time.timestamp()))
        sizes: dict[str, int] = defaultdict(int)
        for item in stored:
            sizes[item.tenant] = max(sizes[item.tenant], item.index + 1)
        for tenant, size in sizes.items():
            self.metrics.tree_size(tenant, size)
        return appended

    async def query(self, where: RecordFilter) -> RecordPage:
        """A page of records, newest first, sensitive fields masked."""
        check.check_tenant(where.tenant)
        check.check_limit(where.limit)
        where = dataclasses.replace(where, since=utc(where.since), until=utc(where.until))
        page = await self.log.query(where)
        return RecordPage(await self._masked(page.records), page.next_before, page.next_before_time)

    async def get(self, id: str, source: str | None) -> StoredRecord:
        """The record, sensitive fields masked."""
        [masked] = await self._masked([await self._find(id, source)])
        return masked

    async def reveal(
        self, id: str, source: str | None, reason: str, caller: Caller
    ) -> StoredRecord:
        """The record in clear. The reveal is itself recorded first, in the same tenant (type
        `audit.record.revealed`, naming the record and the reason)."""
        check.check_text("reason", reason)
        stored = await self._find(id, source)
        record = stored.leaf.record
        revealed = AuditRecord(
            id=str(uuid.uuid4()),
            source=SOURCE,
            type=REVEALED_TYPE,
            time=datetime.now(UTC),
            actor=caller.subject,
            action="reveal",
            resource=f"{record.source}/{record.id}",
            outcome="success",
            tenant=record.tenant,
            data={"reason": reason},
        )
        check.check_record(revealed)
        await self._append([revealed], "http")
        REVEALS.inc()
        clear = await self.fields.reveal(record)
        return StoredRecord(stored.index, dataclasses.replace(stored.leaf, record=clear))

    async def _find(self, id: str, source: str | None) -> StoredRecord:
        check.check_token("id", id)
        if source is not None:
            check.check_token("source", source)
        found = await self.log.find(source, id)
        if not found:
            raise errors.record_not_found(id, source)
        if len(found) > 1:
            raise errors.ambiguous_record(id, sorted({s.leaf.record.source for s in found}))
        return found[0]

    async def _masked(self, found: Sequence[StoredRecord]) -> list[StoredRecord]:
        masked = await self.fields.mask([stored.leaf.record for stored in found])
        return [
            stored
            if record is stored.leaf.record
            else StoredRecord(stored.index, dataclasses.replace(stored.leaf, record=record))
            for stored, record in zip(found, masked, strict=True)
        ]

    async def forget(self, subject: str, tenant: str, caller: Caller) -> None:
        """Deletes the subject's key for good (idempotent): from now on every sensitive field
        under it reads `ERASED`, masked or revealed, in every tenant. The erasure is itself
        recorded in `tenant`'s log (type `audit.subject.forgotten`, resource the subject). The
        leaves keep their ciphertext: every hash, proof, checkpoint and export stays valid."""
        check.check_token("subject", subject)
        check.check_tenant(tenant)
        had_key = await self.fields.forget(subject)
        forgotten = AuditRecord(
            id=str(uuid.uuid4()),
            source=SOURCE,
            type=FORGOTTEN_TYPE,
            time=datetime.now(UTC),
            actor=caller.subject,
            action="forget",
            resource=subject,
            outcome="success",
            tenant=tenant,
            data={"had_key": had_key},
        )
        check.check_record(forgotten)
        await self._append([forgotten], "http")

    async def inclusion(self, tenant: str, index: int, tree_size: int | None) -> InclusionProof:
        """RFC 9162 inclusion proof of leaf `index` in the tree of `tree_size` (default: the
        latest checkpoint's)."""
        check.check_tenant(tenant)
        check.check_index("index", index)
        size = await self._size(tenant, tree_size)
        if index >= size:
            raise NotFound(
                f"leaf {index} is not in the tree of tenant {tenant!r}, which has {size} records",
                tenant=tenant,
                tree_size=size,
            )
        leaf = merkle.Node(0, index)
        groups = merkle.inclusion_nodes(index, size)
        hashes = await self._nodes(tenant, [leaf, *(node for group in groups for node in group)])
        return InclusionProof(tenant, index, size, hashes[leaf], merkle.resolve(groups, hashes))

    async def consistency(
        self, tenant: str, from_size: int, to_size: int | None
    ) -> ConsistencyProof:
        """RFC 9162 consistency proof from the tree of `from_size` to that of `to_size`
        (default: the latest checkpoint's)."""
        check.check_tenant(tenant)
        check.check_index("from_size", from_size, minimum=1)
        size = await self._size(tenant, to_size, "to_size")
        if from_size > size:
            raise NotFound(
                f"the tree of tenant {tenant!r}, which has {size} records, has no prefix of size "
                f"{from_size}",
                tenant=tenant,
                tree_size=size,
            )
        groups = merkle.consistency_nodes(from_size, size)
        hashes = await self._nodes(tenant, [node for group in groups for node in group])
        return ConsistencyProof(tenant, from_size, size, merkle.resolve(groups, hashes))

    async def _size(self, tenant: str, size: int | None, name: str = "tree_size") -> int:
        if size is None:
            return (await self.checkpoints.latest(tenant)).size
        check.check_index(name, size, minimum=1)
        head = await self.log.head(tenant)
        if size > head.size:
            raise errors.beyond_tree(tenant, name, size, head.size)
        return size

    async def _nodes(self, tenant: str, nodes: Collection[merkle.Node]) -> dict[merkle.Node, bytes]:
        hashes = await self.log.nodes(tenant, set(nodes))
        missing = set(nodes) - hashes.keys()
        if missing:
            first = min(missing)
            raise OutriggerError(
                f"the tree of tenant {tenant!r} lacks node {first.level}/{first.index}: the "
                "store is damaged (run GET /v1/verify)"
            )
        return hashes


def _problem(record: AuditRecord) -> InvalidInput | None:
    """Why `record` cannot be stored, or None."""
    try:
        check.check_record(record)
    except InvalidInput as exc:
        return exc
    except OutriggerError as exc:  # TooLarge: refused like any other bad record
        return InvalidInput(exc.detail)
    return None


def utc(moment: datetime | None) -> datetime | None:
    """`moment` in UTC; one beyond what UTC can hold (year 1 east of Greenwich, 9999 west of
    it) becomes the first or last moment there is."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if moment.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC)
