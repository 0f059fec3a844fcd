"""What the audit log's contract suites share: the suite base (on the kit's `ContractSuite`),
leaves as the use cases hand them to a log, and proofs read back from a log's nodes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from outrigger import merkle
from outrigger.testing import ContractSuite, unique
from services.audit.domain.models import AuditRecord, Leaf
from services.audit.domain.rules import leaf_of

if TYPE_CHECKING:
    from services.audit.domain.port import AuditLog

BASE_TIME = datetime(2026, 11, 2, 9, 30, 0, 123456, tzinfo=UTC)
_numbers = itertools.count()


def record(tenant: str, **fields: Any) -> AuditRecord:
    """A valid record of `tenant` with an id no other test uses; `fields` override."""
    values: dict[str, Any] = {
        "id": unique("rec-"),
        "source": "tests.audit",
        "type": "document.updated",
        "time": BASE_TIME,
        "actor": "alice",
        "action": "update",
        "resource": "documents/1",
        "outcome": "success",
        "tenant": tenant,
        "data": {"n": next(_numbers), "title": "Résumé"},
    }
    return AuditRecord(**{**values, **fields})


def leaf(tenant: str, recorded_at: datetime | None = None, **fields: Any) -> Leaf:
    return leaf_of(record(tenant, **fields), recorded_at or datetime.now(UTC))


def leaves(tenant: str, count: int, **fields: Any) -> list[Leaf]:
    return [leaf(tenant, **fields) for _ in range(count)]


def retried(sent: Leaf) -> Leaf:
    """The same record sent again later: its leaf (recorded now) differs from the first."""
    return leaf_of(sent.record, sent.recorded_at + timedelta(seconds=1))


async def root_at(log: AuditLog, tenant: str, size: int) -> bytes:
    """The root of the tenant's tree at `size`, from its stored nodes."""
    wanted = merkle.root_nodes(size)
    found = await log.nodes(tenant, wanted)
    return merkle.fold([found[node] for node in wanted])


async def inclusion(log: AuditLog, tenant: str, index: int, size: int) -> list[bytes]:
    groups = merkle.inclusion_nodes(index, size)
    return merkle.resolve(groups, await log.nodes(tenant, {n for g in groups for n in g}))


async def consistency(log: AuditLog, tenant: str, old: int, new: int) -> list[bytes]:
    groups = merkle.consistency_nodes(old, new)
    return merkle.resolve(groups, await log.nodes(tenant, {n for g in groups for n in g}))


class AuditLogSuite(ContractSuite["AuditLog"]):
    """The `AuditLog` suites' base: `log` is a ready adapter, `tenant` a tenant of its own.

    A subclass names the driver error a write that breaks a table constraint raises."""

    WRITE_ERROR: ClassVar[type[Exception]]

    @pytest.fixture
    def log(self, adapter: AuditLog) -> AuditLog:
        return adapter

    @pytest.fixture
    def tenant(self) -> str:
        return unique("t")
