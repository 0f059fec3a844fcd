"""Rows of both adapters as domain objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from outrigger import merkle
from outrigger.errors import OutriggerError
from services.audit.domain.models import StoredRecord, TreeHead
from services.audit.domain.rules import parse_leaf

if TYPE_CHECKING:
    from collections.abc import Sequence


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
