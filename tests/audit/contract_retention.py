"""Retention: rows recorded before a cutoff go, the tree's nodes stay, so every remaining record
still proves its inclusion and every checkpoint still verifies.

The rows are recorded in January and March 2001 and the cutoff is 1 February 2001: a whole
month on either side, so PostgreSQL (which drops whole monthly partitions) and SQLite (which
deletes rows) forget the same ones. No other test records anything in 2001.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from outrigger.merkle import EMPTY_ROOT
from outrigger.testing import unique
from services.audit.domain.models import Checkpoint
from tests.audit import rfc9162
from tests.audit.storage_support import (
    AuditLogSuite,
    consistency,
    inclusion,
    leaf,
    retried,
)

if TYPE_CHECKING:
    from services.audit.domain.port import AuditLog

JANUARY = datetime(2001, 1, 15, 12, tzinfo=UTC)
MARCH = datetime(2001, 3, 15, 12, tzinfo=UTC)
CUTOFF = datetime(2001, 2, 1, tzinfo=UTC)


class RetentionContract(AuditLogSuite):
    async def test_retention_drops_old_rows_and_keeps_every_proof(
        self, log: AuditLog, tenant: str
    ) -> None:
        other = unique("o")
        old = [leaf(tenant, JANUARY) for _ in range(3)]
        new = [leaf(tenant, MARCH) for _ in range(2)]
        await log.append([*old, leaf(other, JANUARY)])
        await log.append([*new, leaf(other, MARCH)])
        hashes = [sent.hash for sent in old + new]
        head = await log.head(tenant)
        checkpoint = Checkpoint(tenant, 3, rfc9162.mth(hashes[:3]), MARCH, "n")
        await log.add_checkpoint(checkpoint)

        assert await log.drop_before(CUTOFF) == 4

        assert [r.index for r in await log.records(tenant, 0, 5)] == [3, 4]
        assert await log.retained_from(tenant) == 3
        assert await log.retained_from(other) == 1
        assert await log.head(tenant) == head
        scanned = await log.scan(tenant, 0, 5)
        assert [(r[0], r[1], r[2] is not None) for r in scanned] == [
            (i, hashes[i], i >= 3) for i in range(5)
        ]
        for index in (3, 4):
            proof = await inclusion(log, tenant, index, 5)
            assert rfc9162.verify_inclusion(index, 5, hashes[index], proof, head.root)
        proof = await consistency(log, tenant, 3, 5)
        assert rfc9162.verify_consistency(3, 5, checkpoint.root, head.root, proof)
        assert await log.latest_checkpoint(tenant) == checkpoint
        assert await log.find(old[0].record.source, old[0].record.id) == []

    async def test_after_retention_a_tree_grows_on_and_retries_keep_their_receipts(
        self, log: AuditLog, tenant: str
    ) -> None:
        old = [leaf(tenant, JANUARY) for _ in range(2)]
        await log.append(old)
        await log.drop_before(CUTOFF)
        [again, fresh] = await log.append([retried(old[1]), leaf(tenant)])
        assert (again.index, again.leaf_hash, again.duplicate) == (1, old[1].hash, True)
        assert (fresh.index, fresh.duplicate) == (2, False)
        head = await log.head(tenant)
        assert head.root == rfc9162.mth([old[0].hash, old[1].hash, fresh.leaf_hash])

    async def test_nothing_to_drop_changes_nothing(self, log: AuditLog, tenant: str) -> None:
        await log.append([leaf(tenant)])
        assert await log.drop_before(datetime(1999, 1, 1, tzinfo=UTC)) == 0
        assert await log.retained_from(tenant) == 0
        assert len(await log.records(tenant, 0, 1)) == 1
        assert (await log.head(unique("o"))).root == EMPTY_ROOT
