"""Verification: the stored rows, the tree and the checkpoints, recomputed and compared.

For every index of a tenant's tree (`AuditLog.scan`, a chunk at a time, in index order): a leaf
hash is stored; exactly one records row claims the index (none below `retained_from`, where
retention dropped them on purpose); its body hashes to that leaf, is an audit record of the
tenant, and agrees with the columns kept beside it for queries. No row or leaf lies beyond the
tree. The leaf hashes are folded into the root as the scan goes, and every inner node the fold
completes must be the one stored (`AuditLog.completed_nodes`, one query a chunk: proofs are
served from the stored nodes). At each checkpoint's size the root must be the checkpoint's,
whose signature must verify with the service's key under the tenant's origin (so every
checkpoint is consistent with the next: both are roots of one leaf sequence), and at the end it
must be the root of the stored tree. The first failure is named:
`Mismatch(index, reason)`, `index` None when no single record is at fault.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from outrigger import merkle
from outrigger.errors import InvalidInput
from outrigger.notes import NoteError, open_checkpoint
from services.audit.domain import rules
from services.audit.domain.models import Mismatch, Verification

if TYPE_CHECKING:
    from services.audit.domain.models import Checkpoint, ScannedRow
    from services.audit.domain.port import AuditLog
    from services.audit.metrics import AuditMetrics
    from services.audit.usecases.checkpoints import Checkpoints

CHUNK = 10_000


class Verifier:
    def __init__(self, log: AuditLog, checkpoints: Checkpoints, metrics: AuditMetrics) -> None:
        self._log = log
        self._checkpoints = checkpoints
        self._metrics = metrics

    async def verify(self, tenant: str) -> Verification:
        rules.check_tenant(tenant)
        run = _Run(self._checkpoints, tenant)
        head = await self._log.head(tenant)
        retained = await self._log.retained_from(tenant)
        signed = await self._log.checkpoints(tenant)
        run.expect(signed, head.size)
        chunks = [(first, min(first + CHUNK, head.size)) for first in range(0, head.size, CHUNK)]
        # The next chunk is read while this one is checked: the database works beside Python.
        reads = [asyncio.create_task(self._read(tenant, *chunks[0]))] if chunks else []
        try:
            for number, (first, end) in enumerate(chunks):
                if number + 1 < len(chunks):
                    reads.append(asyncio.create_task(self._read(tenant, *chunks[number + 1])))
                rows, nodes = await reads.pop(0)
                run.check_rows(rows, first, end, retained)
                if not run.mismatch:
                    run.check_inner(nodes)
                if run.mismatch:
                    break
        finally:
            for read in reads:
                await _finished(read)
        if not run.mismatch:
            beyond = await self._log.scan(tenant, head.size, rules.MAX_INDEX + 1)
            if beyond:
                run.fail(beyond[0][0], f"beyond the tree, which has {head.size} records")
        if not run.mismatch and merkle.fold(run.frontier) != head.root:
            run.fail(None, "the stored tree's root is not the root of its leaf hashes")
        if run.mismatch:
            self._metrics.verify_failed(tenant)
        return Verification(
            tenant, head.size, run.records, retained, run.checkpoints_checked, run.mismatch
        )

    async def _read(
        self, tenant: str, first: int, end: int
    ) -> tuple[list[ScannedRow], list[tuple[int, int, bytes]]]:
        return await asyncio.gather(
            self._log.scan(tenant, first, end), self._log.completed_nodes(tenant, first, end)
        )


async def _finished(task: asyncio.Task[Any]) -> None:
    """Waits for a read no longer wanted (a verification that stopped early or failed): its
    connection goes back to the pool idle; its answer or error is dropped."""
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


class _Run:
    """One verification's progress: the frontier folded so far and the checkpoints ahead."""

    def __init__(self, checkpoints: Checkpoints, tenant: str) -> None:
        self.tenant = tenant
        self.origin = checkpoints.origin(tenant)
        self.verifier_key = checkpoints.verifier_key
        self.frontier: list[bytes] = []
        self.inner: dict[tuple[int, int], bytes] = {}  # (level, index): completed, not compared
        self.size = 0
        self.records = 0
        self.checkpoints_checked = 0
        self.ahead: list[Checkpoint] = []
        self.mismatch: Mismatch | None = None

    def fail(self, index: int | None, reason: str) -> None:
        if self.mismatch is None:
            self.mismatch = Mismatch(index, reason)

    def expect(self, signed: list[Checkpoint], tree_size: int) -> None:
        for checkpoint in signed:
            if checkpoint.size > tree_size:
                self.fail(None, f"checkpoint {checkpoint.size} is beyond the tree ({tree_size})")
                return
        self.ahead = list(reversed(signed))
        self._reached()  # a checkpoint of size 0, if any

    def check_rows(self, rows: list[ScannedRow], first: int, end: int, retained: int) -> None:
        """Checks a chunk's rows; the leaf hashes before a failing index are folded first, so a
        checkpoint they break is named before the later row."""
        leaves: list[bytes] = []
        failure: tuple[int, str] | None = None
        expected = first
        position, count = 0, len(rows)
        while position < count:
            row = rows[position]
            index, node_hash = row[0], row[1]
            claims = 1
            while position + claims < count and rows[position + claims][0] == index:
                claims += 1
            position += claims
            if index != expected or node_hash is None:
                failure = (expected, "the tree has no leaf hash at this index")
                break
            problem = self._problem(row, node_hash, claims, retained)
            if problem:
                failure = (index, problem)
                break
            leaves.append(node_hash)
            expected += 1
        else:
            if expected != end:
                failure = (expected, "the tree has no leaf hash at this index")
        self._fold(leaves)
        if failure:
            self.fail(*failure)

    def _problem(self, row: ScannedRow, node_hash: bytes, claims: int, retained: int) -> str | None:
        index, body = row[0], row[2]
        if body is None:
            return None if index < retained else "the record is missing (its row was deleted)"
        if claims > 1:
            return f"{claims} rows claim this index (a row was inserted)"
        self.records += 1
        if merkle.leaf_hash(body) != node_hash:
            return (
                "the row's body does not hash to the leaf stored at this index "
                "(edited, or moved from another index)"
            )
        try:
            tenant, columns = rules.body_columns(body)
        except InvalidInput:
            return "the row's body is not an audit record"
        if tenant != self.tenant:
            return f"the row's body is a record of tenant {tenant!r}"
        if columns != row[3:]:
            return "the row's query columns (type, actor, resource, outcome, time) disagree"
        return None

    def _fold(self, leaves: list[bytes]) -> None:
        """Folds leaf hashes into the frontier, checking each checkpoint on the way."""
        while leaves:
            stop = self.ahead[-1].size - self.size if self.ahead else len(leaves)
            taken, leaves = leaves[:stop], leaves[stop:]
            inner, self.frontier = merkle.completed_nodes(self.size, self.frontier, taken)
            self.inner.update(inner)
            self.size += len(taken)
            self._reached()
            if self.mismatch:
                return

    def check_inner(self, stored: list[tuple[int, int, bytes]]) -> None:
        """The inner nodes the fold completed since the last call must be the `stored` ones
        (`AuditLog.completed_nodes` of the same leaves); the first that is not (by its first
        leaf, then level) is named."""
        computed, self.inner = self.inner, {}
        found = {(level, index): digest for level, index, digest in stored}
        if found == computed:
            return
        wrong = [key for key, digest in computed.items() if found.get(key) != digest]
        level, index = min(
            wrong or found.keys() - computed.keys(), key=lambda k: (k[1] << k[0], k[0])
        )
        node = merkle.Node(level, index)
        if (level, index) not in computed:
            what = "is stored but not part of the tree"
        elif (level, index) not in found:
            what = "is missing"
        else:
            what = "is not the hash of the leaves below it"
        self.fail(
            None,
            f"the tree's node {level}/{index} (over indexes {node.first}-{node.end - 1}) {what}: "
            "proofs through it fail",
        )

    def _reached(self) -> None:
        while self.ahead and self.ahead[-1].size == self.size and not self.mismatch:
            self._check(self.ahead.pop())

    def _check(self, checkpoint: Checkpoint) -> None:
        where = f"checkpoint {checkpoint.size}"
        try:
            origin, size, root = open_checkpoint(checkpoint.note, self.verifier_key)
        except NoteError as exc:
            self.fail(None, f"{where}: {exc}")
            return
        if (origin, size, root) != (self.origin, checkpoint.size, checkpoint.root):
            self.fail(None, f"{where}: its signed note says {origin}, size {size}, another root")
        elif root != merkle.fold(self.frontier):
            self.fail(
                None,
                f"{where}: the leaf hashes of indexes 0-{size - 1} fold to another root "
                "(a leaf hash changed after it was signed)",
            )
        self.checkpoints_checked += 1
