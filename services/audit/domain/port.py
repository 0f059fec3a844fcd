"""The audit log's storage port. Both adapters (PostgreSQL, SQLite) keep this contract, proved by
`tests/audit/contract.py`; they store and fetch, and check nothing the use cases check.

A tenant's tree is stored as its nodes (`merkle.Node` → hash, level 0 being the leaf hashes),
kept apart from the records rows: retention drops rows, never nodes, so every proof and every
checkpoint stays valid after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from outrigger.merkle import Node
    from services.audit.domain.models import (
        Appended,
        Checkpoint,
        Leaf,
        RecordFilter,
        RecordPage,
        ScannedRow,
        StoredRecord,
        TreeHead,
    )


class AuditLog(Protocol):
    async def append(self, leaves: Sequence[Leaf]) -> list[Appended]:
        """Stores `leaves` in one transaction and answers one `Appended` per leaf, in order.

        Each new leaf takes the next index of its tenant's tree (gap-free from 0, in the order
        given) and the tree's nodes are extended with `merkle.extend`. One writer per tenant at
        a time, across every replica: two concurrent appends to one tenant never fork its tree.
        A leaf whose `(source, id)` is stored already, or came earlier in `leaves`, is not stored
        again: it answers `duplicate=True` with the index and leaf hash stored first.
        On failure nothing of the batch is stored.
        """
        ...

    async def head(self, tenant: str) -> TreeHead:
        """The tenant's tree now (size 0 and the empty root for a tenant with no records)."""
        ...

    async def heads(self) -> list[TreeHead]:
        """The tree of every tenant with records, by tenant name."""
        ...

    async def nodes(self, tenant: str, nodes: Collection[Node]) -> dict[Node, bytes]:
        """The stored hashes of `nodes` (those absent are left out), in one round trip."""
        ...

    async def find(self, source: str | None, id: str) -> list[StoredRecord]:
        """The records with this `id` (and `source`, if given), of any tenant."""
        ...

    async def query(self, where: RecordFilter) -> RecordPage:
        """Newest first, at most `where.limit`: by index, below `where.before` if given; or,
        in a time window (`where.since` and/or `where.until`), by (time, index), below
        (`where.before_time`, `where.before`) if given (a missing `before_time` is the latest
        time). `next_before` is the index of the page's last record when more follow, and in a
        window `next_before_time` its time.

        Keyset pagination: no count, no offset; a filtered page stays fast at millions of rows.
        """
        ...

    async def records(self, tenant: str, first: int, end: int) -> list[StoredRecord]:
        """The stored records with `first <= index < end`, oldest first (rows dropped by
        retention are absent)."""
        ...

    async def scan(self, tenant: str, first: int, end: int) -> list[ScannedRow]:
        """Every index in `[first, end)` that has a leaf node or a row, in index order: one
        `ScannedRow` per row claiming the index (two if a second row claims it), or one without
        a body if no row does."""
        ...

    async def completed_nodes(
        self, tenant: str, first: int, end: int
    ) -> list[tuple[int, int, bytes]]:
        """The stored inner nodes (level >= 1) whose last leaf is in `[first, end)`, the ones
        appending those leaves completed: `(level, index, hash)` with `first >> level <= index <
        end >> level`, in any order, in one round trip."""
        ...

    async def retained_from(self, tenant: str) -> int:
        """The first index retention kept: rows below it were dropped on purpose."""
        ...

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Stores a checkpoint; one of the same tenant and size already stored is kept."""
        ...

    async def latest_checkpoint(self, tenant: str) -> Checkpoint | None: ...

    async def checkpoint_covering(self, tenant: str, index: int) -> Checkpoint | None:
        """The first checkpoint whose tree holds leaf `index` (smallest size > index)."""
        ...

    async def checkpoints(self, tenant: str, *, after_size: int = 0) -> list[Checkpoint]:
        """The tenant's checkpoints with size > `after_size`, smallest first."""
        ...

    async def drop_before(self, cutoff: datetime) -> int:
        """Forgets the rows recorded before `cutoff` (PostgreSQL: whole monthly partitions that
        end on or before it) and moves each tenant's `retained_from`; nodes stay. Returns how
        many rows went."""
        ...

    async def check(self) -> None:
        """Returns if the store can be read and written now; raises DatabaseError if not."""
        ...

    async def close(self) -> None: ...
