"""Rows of both adapters as domain objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from outrigger import merkle
from outrigger.errors import OutriggerError
from services.audit.domain.models import RecordPage, StoredRecord, TreeHead
from services.audit.domain.rules import parse_leaf

if TYPE_CHECKING:
    from collections.abc import Sequence

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
