"""The audit log's appends: gap-free indexes per tenant, retries answered with their first
receipt, nothing stored of a failed batch, and a tree whose roots and proofs satisfy RFC 9162."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from outrigger import merkle
from outrigger.merkle import Node
from outrigger.testing import unique
from tests.audit import rfc9162
from tests.audit.storage_support import (
    AuditLogSuite,
    consistency,
    inclusion,
    leaf,
    leaves,
    retried,
    root_at,
)

if TYPE_CHECKING:
    from services.audit.domain.port import AuditLog


class AppendContract(AuditLogSuite):
    async def test_each_tenant_counts_its_own_indexes_from_zero_in_batch_order(
        self, log: AuditLog
    ) -> None:
        a, b = unique("a"), unique("b")
        first = [leaf(a), leaf(b), leaf(a), leaf(a), leaf(b)]
        second = [leaf(b), leaf(a)]
        answers = await log.append(first) + await log.append(second)
        sent = first + second
        assert [(x.tenant, x.index) for x in answers] == [
            (a, 0),
            (b, 0),
            (a, 1),
            (a, 2),
            (b, 1),
            (b, 2),
            (a, 3),
        ]
        assert [(x.source, x.id, x.leaf_hash) for x in answers] == [
            (s.record.source, s.record.id, s.hash) for s in sent
        ]
        assert not any(x.duplicate for x in answers)
        assert (await log.head(a)).size == 4
        assert (await log.head(b)).size == 3

    async def test_a_retry_answers_the_index_and_hash_stored_first(
        self, log: AuditLog, tenant: str
    ) -> None:
        sent = leaves(tenant, 3)
        await log.append(sent)
        again = await log.append([retried(sent[1]), *leaves(tenant, 1)])
        assert (again[0].index, again[0].leaf_hash, again[0].duplicate) == (1, sent[1].hash, True)
        assert (again[1].index, again[1].duplicate) == (3, False)
        assert (await log.head(tenant)).size == 4
        [stored] = await log.find(sent[1].record.source, sent[1].record.id)
        assert stored.leaf.body == sent[1].body

    async def test_a_record_twice_in_one_batch_is_stored_once(
        self, log: AuditLog, tenant: str
    ) -> None:
        one, two = leaves(tenant, 2)
        answers = await log.append([one, two, retried(one), one])
        assert [(x.index, x.leaf_hash, x.duplicate) for x in answers] == [
            (0, one.hash, False),
            (1, two.hash, False),
            (0, one.hash, True),
            (0, one.hash, True),
        ]
        assert (await log.head(tenant)).size == 2
        assert len(await log.records(tenant, 0, 10)) == 2

    async def test_a_record_keeps_the_tenant_it_was_first_stored_in(
        self, log: AuditLog, tenant: str
    ) -> None:
        sent = leaf(tenant)
        await log.append([sent])
        [answer] = await log.append([leaf(unique("o"), id=sent.record.id)])
        assert (answer.tenant, answer.index, answer.duplicate) == (tenant, 0, True)

    async def test_a_batch_that_fails_stores_nothing(self, log: AuditLog, tenant: str) -> None:
        await log.append(leaves(tenant, 2))
        before = await log.head(tenant)
        good, other = leaf(tenant), unique("o")
        broken: Any = leaf(other, outcome="unknown")  # the table refuses it, mid-batch
        with pytest.raises(self.WRITE_ERROR):
            await log.append([good, leaf(tenant), broken])
        assert await log.head(tenant) == before
        assert (await log.head(other)).size == 0
        assert await log.find(good.record.source, good.record.id) == []
        assert await log.nodes(tenant, {Node(0, 2), Node(1, 1)}) == {}
        [answer] = await log.append([good])
        assert (answer.index, answer.duplicate) == (2, False)

    async def test_an_empty_batch_stores_nothing(self, log: AuditLog, tenant: str) -> None:
        assert await log.append([]) == []

    async def test_roots_and_proofs_from_the_nodes_satisfy_rfc9162(
        self, log: AuditLog, tenant: str
    ) -> None:
        hashes: list[bytes] = []
        sizes = []
        for count in (1, 2, 3, 5, 8, 1, 4):
            batch = leaves(tenant, count)
            await log.append(batch)
            hashes += [sent.hash for sent in batch]
            sizes.append(len(hashes))
            head = await log.head(tenant)
            assert (head.size, head.root) == (len(hashes), rfc9162.mth(hashes))
        for size in sizes:
            root = rfc9162.mth(hashes[:size])
            assert await root_at(log, tenant, size) == root
            for index in range(size):
                proof = await inclusion(log, tenant, index, size)
                assert rfc9162.verify_inclusion(index, size, hashes[index], proof, root)
            for old in range(1, size):
                proof = await consistency(log, tenant, old, size)
                old_root = rfc9162.mth(hashes[:old])
                assert rfc9162.verify_consistency(old, size, old_root, root, proof)

    async def test_nodes_answers_those_stored_and_leaves_out_the_rest(
        self, log: AuditLog, tenant: str
    ) -> None:
        sent = leaves(tenant, 3)
        await log.append(sent)
        found = await log.nodes(
            tenant, [Node(0, 0), Node(0, 2), Node(1, 0), Node(1, 1), Node(0, 9)]
        )
        assert found == {
            Node(0, 0): sent[0].hash,
            Node(0, 2): sent[2].hash,
            Node(1, 0): rfc9162.node(sent[0].hash, sent[1].hash),
        }
        assert await log.nodes(unique("o"), [Node(0, 0)]) == {}
        assert await log.nodes(tenant, []) == {}

    async def test_a_tenant_without_records_has_the_empty_tree(
        self, log: AuditLog, tenant: str
    ) -> None:
        head = await log.head(tenant)
        assert (head.tenant, head.size, head.root) == (tenant, 0, merkle.EMPTY_ROOT)
        assert head.root == rfc9162.mth([])
        assert await log.retained_from(tenant) == 0
        assert tenant not in {h.tenant for h in await log.heads()}

    async def test_heads_lists_every_tenant_with_records(self, log: AuditLog) -> None:
        a, b = sorted([unique("h"), unique("h")])
        await log.append([leaf(b), *leaves(a, 3)])
        heads = {h.tenant: h for h in await log.heads()}
        assert heads[a] == await log.head(a)
        assert (heads[a].size, heads[b].size) == (3, 1)
        names = [h.tenant for h in await log.heads()]
        assert names == sorted(names)

    async def test_a_working_store_is_ready(self, log: AuditLog) -> None:
        await log.check()
