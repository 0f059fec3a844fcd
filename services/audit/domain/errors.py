"""The audit domain's errors, each saying what was wrong and what to do."""

from __future__ import annotations

from outrigger.errors import Conflict, NotFound


def record_not_found(id: str, source: str | None) -> NotFound:
    where = f" from source {source!r}" if source else ""
    return NotFound(f"no audit record {id!r}{where}", id=id, source=source)


def ambiguous_record(id: str, sources: list[str]) -> Conflict:
    return Conflict(
        f"audit record id {id!r} was sent by several sources ({', '.join(sources[:5])}); "
        "name the one you mean with source=",
        id=id,
        sources=sources[:5],
    )


def beyond_tree(tenant: str, what: str, value: int, size: int) -> NotFound:
    return NotFound(
        f"{what} {value} is beyond the tree of tenant {tenant!r}, which has {size} records",
        tenant=tenant,
        tree_size=size,
    )
