"""Rows of both adapters as domain objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from outrigger import merkle
from outrigger.errors import OutriggerError
from services.audit.domain.models import (
    RecordPage,
    StoredRecord,
    StoredRow,
    TreeHead,
    VerifyRow,
)
from services.audit.domain.rules import parse_leaf

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from services.audit.domain.models import RecordFilter

# the time of a window's cursor that names only an index: above every record's
LATEST = datetime.max.replace(tzinfo=UTC)


def tree_head(tenant: str, size: int, hashes: Sequence[bytes]) -> TreeHead:
    """The head of a tree of `size` from the hashes of its `merkle.root_nodes`, in order."""
    if len(hashes) != len(merkle.root_nodes(size)):
        raise OutriggerError(
            f"the tree of tenant {tenant!r} ({size} records) lacks nodes of its root: the audit "
            "nodes were altered outside the service; run verify"
        )
    return TreeHead(tenant, size, merkle.fold(hashes))


def stored_record(index: int, body: bytes) -> StoredRecord:
    return StoredRecord(index, parse_leaf(body))


def page_key_time(where: RecordFilter) -> datetime | None:
    """The time of the page's keyset condition: in a window with a cursor, its time."""
    if where.before is None or not where.windowed:
        return None
    return LATEST if where.before_time is None else where.before_time


def record_page(rows: Sequence[Sequence[Any]], where: RecordFilter) -> RecordPage:
    """The page of up to `where.limit` records from (index, body) rows, asked for one more to
    know whether another page follows; its cursor is the last record's index (and time)."""
    records = [stored_record(*row) for row in rows[: where.limit]]
    if len(rows) <= where.limit:
        return RecordPage(records, None)
    last = records[-1]
    return RecordPage(records, last.index, last.leaf.record.time if where.windowed else None)


def scanned(rows: Iterable[Sequence[Any]]) -> list[VerifyRow]:
    """`VerifyRow`s from (index, leaf node hash, body, type, actor, resource, outcome, time)
    rows in index order, one for the node and each row claiming an index (a node without a row
    comes with body None; a row without a node, with node hash None)."""
    result: list[VerifyRow] = []
    for index, node_hash, body, type_, actor, resource, outcome, time in rows:
        row = () if body is None else (StoredRow(body, (type_, actor, resource, outcome, time)),)
        if result and result[-1].index == index:
            last = result[-1]
            result[-1] = VerifyRow(index, last.node_hash or node_hash, last.rows + row)
        else:
            result.append(VerifyRow(index, node_hash, row))
    return result
