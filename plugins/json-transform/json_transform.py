"""Reshape JSON records by a small spec (select, then drop, then rename), reporting progress.

Fields are dotted paths into nested objects: `select = ["id", "customer.name"]` keeps
`{"id": 7, "customer": {"name": "Ada"}}` of a larger record. A path a record lacks is passed
over. `rename = {"customer.name": "name"}` moves a value, creating the objects its new path
needs.

The function is a generator: it yields `{"progress": fraction, "message": ...}` now and then,
and returns the result.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

MISSING = object()
PROGRESS_STEPS = 10


def transform(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    records: list[dict[str, Any]] = payload["records"]
    select: list[str] | None = payload.get("select")
    drop: list[str] = payload.get("drop", [])
    rename: dict[str, str] = payload.get("rename", {})
    step = max(1, len(records) // PROGRESS_STEPS)
    reshaped = []
    for index, record in enumerate(records):
        reshaped.append(reshape(record, select, drop, rename))
        done = index + 1
        if done % step == 0 and done < len(records):
            yield {"progress": done / len(records), "message": f"{done} of {len(records)} records"}
    return {"records": reshaped, "count": len(reshaped)}


def reshape(
    record: dict[str, Any], select: list[str] | None, drop: list[str], rename: dict[str, str]
) -> dict[str, Any]:
    """One record reshaped; the record given is left as it was."""
    if select is None:
        shaped = copy.deepcopy(record)
    else:
        shaped = {}
        for path in select:
            value = get(record, path)
            if value is not MISSING:
                put(shaped, path, copy.deepcopy(value))
    for path in drop:
        take(shaped, path)
    moved = [(target, take(shaped, source)) for source, target in rename.items()]
    for target, value in moved:
        if value is not MISSING:
            put(shaped, target, value)
    return shaped


def get(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


def put(record: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        child = record.get(key)
        if not isinstance(child, dict):
            child = record[key] = {}
        record = child
    record[last] = value


def take(record: dict[str, Any], path: str) -> Any:
    """Removes the value at `path` and returns it (`MISSING` when there is none)."""
    *parents, last = path.split(".")
    node: Any = record
    for key in parents:
        node = node.get(key)
        if not isinstance(node, dict):
            return MISSING
    return node.pop(last, MISSING)
