"""The audit log's reads: keyset pages newest first by every filter, `find`, `records`, the
`scan` that verification reads (nodes beside rows), and checkpoints."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from outrigger import merkle
from outrigger.merkle import leaf_hash
from outrigger.testing import unique
from services.audit.domain.models import Checkpoint, RecordFilter
from services.audit.domain.rules import columns
from tests.audit.storage_support import BASE_TIME, AuditLogSuite, leaf, leaves

if TYPE_CHECKING:
    from services.audit.domain.models import Leaf, StoredRecord
    from services.audit.domain.port import AuditLog

ACTORS = ("alice", "bob", "carol")


def indexes(records: list[StoredRecord]) -> list[int]:
    return [r.index for r in records]


class ReadContract(AuditLogSuite):
    @pytest.fixture
    async def ten(self, log: AuditLog, tenant: str) -> list[Leaf]:
        """Ten records of `tenant`, index n at BASE_TIME + n minutes, with varied fields."""
        sent = [
            leaf(
                tenant,
                type="document.created" if n % 2 else "document.updated",
                actor=ACTORS[n % 3],
                resource=f"documents/{n % 4}",
                outcome="failure" if n in (2, 7) else "success",
                time=BASE_TIME + timedelta(minutes=n),
            )
            for n in range(10)
        ]
        await log.append(sent[:4])
        await log.append(sent[4:])
        await log.append(leaves(unique("o"), 3))  # another tenant's, never in the pages
        return sent

    async def page(self, log: AuditLog, tenant: str, **fields: object) -> list[int]:
        page = await log.query(RecordFilter(tenant=tenant, **fields))  # type: ignore[arg-type]
        return indexes(page.records)

    async def test_a_page_is_newest_first_and_holds_the_records_as_stored(
        self, log: AuditLog, tenant: str, ten: list[Leaf]
    ) -> None:
        page = await log.query(RecordFilter(tenant=tenant))
        assert indexes(page.records) == list(range(9, -1, -1))
        assert page.next_before is None
        for stored in page.records:
            assert stored.leaf == ten[stored.index]

    @pytest.mark.parametrize(
        ("field", "value", "expected"),
        [
            ("type", "document.created", [9, 7, 5, 3, 1]),
            ("actor", "bob", [7, 4, 1]),
            ("resource", "documents/2", [6, 2]),
            ("outcome", "failure", [7, 2]),
            ("since", BASE_TIME + timedelta(minutes=6), [9, 8, 7, 6]),
            ("until", BASE_TIME + timedelta(minutes=2), [1, 0]),
            ("before", 3, [2, 1, 0]),
            ("type", "nothing.happened", []),
        ],
    )
    async def test_each_filter_keeps_only_what_matches(
        self,
        log: AuditLog,
        tenant: str,
        ten: list[Leaf],
        field: str,
        value: object,
        expected: list[int],
    ) -> None:
        assert await self.page(log, tenant, **{field: value}) == expected

    async def test_filters_combine_with_each_other_and_the_cursor(
        self, log: AuditLog, tenant: str, ten: list[Leaf]
    ) -> None:
        assert await self.page(log, tenant, type="document.created", actor="alice") == [9, 3]
        window = {"since": BASE_TIME + timedelta(minutes=2), "until": BASE_TIME.replace(hour=10)}
        key = {"before": 7, "before_time": BASE_TIME + timedelta(minutes=7)}
        assert await self.page(log, tenant, outcome="success", **key, **window) == [6, 5, 4, 3]
        assert await self.page(log, tenant, resource="documents/1", before=5) == [1]

    async def test_keyset_pages_walk_every_record_once(
        self, log: AuditLog, tenant: str, ten: list[Leaf]
    ) -> None:
        seen: list[int] = []
        cursor: int | None = None
        pages = 0
        while True:
            page = await log.query(RecordFilter(tenant=tenant, limit=3, before=cursor))
            seen += indexes(page.records)
            pages += 1
            if page.next_before is None:
                break
            assert page.next_before == page.records[-1].index
            cursor = page.next_before
        assert (seen, pages) == (list(range(9, -1, -1)), 4)
        full = await log.query(RecordFilter(tenant=tenant, limit=5, before=5))
        assert (indexes(full.records), full.next_before) == ([4, 3, 2, 1, 0], None)
        filtered = await log.query(RecordFilter(tenant=tenant, type="document.updated", limit=2))
        assert (indexes(filtered.records), filtered.next_before) == ([8, 6], 6)

    async def test_a_window_is_newest_first_by_time_then_index_and_paged_by_both(
        self, log: AuditLog, tenant: str
    ) -> None:
        minutes = [5, 1, 3, 3, 0, 3, 9, 1, 3, 2]  # index n at BASE_TIME + minutes[n]: out of order
        sent = [
            leaf(tenant, actor=ACTORS[n % 2], time=BASE_TIME + timedelta(minutes=m))
            for n, m in enumerate(minutes)
        ]
        await log.append(sent)
        at = {m: BASE_TIME + timedelta(minutes=m) for m in range(10)}
        window = RecordFilter(tenant=tenant, since=at[1], until=at[9], limit=3)
        # pages of 3 split the four records at minute 3 (8, 5 | 3, 2)
        assert await self.walk(log, window) == [[0, 8, 5], [3, 2, 9], [7, 1]]
        assert await self.page(log, tenant, since=at[3]) == [6, 0, 8, 5, 3, 2]
        assert await self.page(log, tenant, until=at[2]) == [7, 1, 4]
        alice = dataclasses.replace(window, actor="alice", limit=2)
        assert await self.walk(log, alice) == [[0, 8], [2]]
        everything = await log.query(RecordFilter(tenant=tenant, limit=9))
        assert (indexes(everything.records), everything.next_before_time) == (
            list(range(9, 0, -1)),
            None,
        )

    async def walk(self, log: AuditLog, where: RecordFilter) -> list[list[int]]:
        """The indexes of every page of `where`, following each page's cursor (index and time)."""
        pages: list[list[int]] = []
        while True:
            page = await log.query(where)
            pages.append(indexes(page.records))
            if page.next_before is None:
                assert page.next_before_time is None
                return pages
            last = page.records[-1]
            assert (page.next_before, page.next_before_time) == (last.index, last.leaf.record.time)
            where = dataclasses.replace(
                where, before=page.next_before, before_time=page.next_before_time
            )

    async def test_find_answers_every_source_that_used_the_id(
        self, log: AuditLog, tenant: str
    ) -> None:
        other = unique("o")
        first = leaf(tenant, source="billing")
        second = leaf(other, source="shipping", id=first.record.id)
        await log.append([first, leaf(tenant)])
        await log.append([second])
        found = await log.find(None, first.record.id)
        assert [(r.leaf.record.source, r.leaf.record.tenant, r.index) for r in found] == [
            ("billing", tenant, 0),
            ("shipping", other, 0),
        ]
        [only] = await log.find("shipping", first.record.id)
        assert only.leaf == second
        assert await log.find("billing", unique("missing-")) == []
        assert await log.find(None, unique("missing-")) == []

    async def test_records_answers_a_range_oldest_first(
        self, log: AuditLog, tenant: str, ten: list[Leaf]
    ) -> None:
        stored = await log.records(tenant, 3, 7)
        assert indexes(stored) == [3, 4, 5, 6]
        assert [r.leaf for r in stored] == ten[3:7]
        assert await log.records(tenant, 10, 20) == []
        assert indexes(await log.records(tenant, 0, 100)) == list(range(10))

    async def test_scan_shows_each_index_with_its_leaf_node_and_its_row(
        self, log: AuditLog, tenant: str, ten: list[Leaf]
    ) -> None:
        scanned = await log.scan(tenant, 0, 10)
        assert [row[0] for row in scanned] == list(range(10))
        for (_, node_hash, body, *stored_columns), sent in zip(scanned, ten, strict=True):
            assert node_hash == sent.hash
            assert body == sent.body
            assert leaf_hash(body) == node_hash
            assert tuple(stored_columns) == columns(sent)
        assert [row[0] for row in await log.scan(tenant, 4, 7)] == [4, 5, 6]
        assert await log.scan(tenant, 10, 2**62) == []
        assert await log.scan(unique("o"), 0, 10) == []

    async def test_completed_nodes_are_the_inner_nodes_those_leaves_completed(
        self, log: AuditLog, tenant: str, ten: list[Leaf]
    ) -> None:
        def stored(found: list[tuple[int, int, bytes]]) -> dict[tuple[int, int], bytes]:
            return {(level, index): digest for level, index, digest in found}

        hashes = [sent.hash for sent in ten]
        everything, _ = merkle.completed_nodes(0, [], hashes)
        assert stored(await log.completed_nodes(tenant, 0, 10)) == everything
        assert set(everything) == {(1, 0), (1, 1), (1, 2), (1, 3), (1, 4), (2, 0), (2, 1), (3, 0)}
        # leaves 4-6 complete only 1/2 (leaves 4-5): 1/3 and 2/1 wait for leaf 7
        head = merkle.extend(0, [], hashes[:4])[1]
        later, _ = merkle.completed_nodes(4, head, hashes[4:7])
        assert stored(await log.completed_nodes(tenant, 4, 7)) == later == {(1, 2): later[1, 2]}
        assert await log.completed_nodes(tenant, 10, 2**53) == []
        assert await log.completed_nodes(unique("o"), 0, 10) == []


class CheckpointContract(AuditLogSuite):
    def checkpoint(self, tenant: str, size: int, note: str = "") -> Checkpoint:
        issued = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=size, microseconds=7)
        root = bytes([size]) * 32
        return Checkpoint(tenant, size, root, issued, note or f"{tenant}\n{size}\n")

    async def test_checkpoints_are_found_latest_covering_and_after_a_size(
        self, log: AuditLog, tenant: str
    ) -> None:
        for size in (5, 2, 9):
            await log.add_checkpoint(self.checkpoint(tenant, size))
        await log.add_checkpoint(self.checkpoint(unique("o"), 20))
        assert await log.latest_checkpoint(tenant) == self.checkpoint(tenant, 9)
        covering = [await log.checkpoint_covering(tenant, i) for i in (0, 1, 2, 4, 5, 8, 9)]
        assert [c.size if c else None for c in covering] == [2, 2, 5, 5, 9, 9, None]
        assert [c.size for c in await log.checkpoints(tenant)] == [2, 5, 9]
        assert await log.checkpoints(tenant, after_size=2) == [
            self.checkpoint(tenant, 5),
            self.checkpoint(tenant, 9),
        ]
        assert await log.checkpoints(tenant, after_size=9) == []

    async def test_a_checkpoint_of_a_size_stored_already_is_kept_as_first_stored(
        self, log: AuditLog, tenant: str
    ) -> None:
        first = self.checkpoint(tenant, 3, "first")
        await log.add_checkpoint(first)
        await log.add_checkpoint(self.checkpoint(tenant, 3, "second"))
        assert await log.checkpoints(tenant) == [first]

    async def test_a_tenant_without_checkpoints_has_none(self, log: AuditLog, tenant: str) -> None:
        assert await log.latest_checkpoint(tenant) is None
        assert await log.checkpoint_covering(tenant, 0) is None
        assert await log.checkpoints(tenant) == []
