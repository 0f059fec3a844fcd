"""CSV text to JSON rows, with the standard library's `csv` reader.

Each line becomes an object keyed by the column names (the header's, or those given). A line
with fewer cells than columns has `null` for the missing ones; one with more is an error naming
the line, since its extra cells would have no name.
"""

from __future__ import annotations

import csv
import io
import math
import re
from typing import Any

NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
LARGEST = 2**63  # JSON peers read integers within 64 bits; larger ones stay text


def convert(payload: dict[str, Any]) -> dict[str, Any]:
    text = io.StringIO(payload["csv"], newline="")
    reader = csv.reader(text, delimiter=payload.get("delimiter", ","))
    skip_empty = payload.get("skip_empty", True)
    lines = [line for line in reader if line or not skip_empty]
    columns: list[str] | None = payload.get("columns")
    if payload.get("header", True) and lines:
        header = lines.pop(0)
        columns = columns or header
    if columns is None:
        width = max((len(line) for line in lines), default=0)
        columns = [f"column_{index}" for index in range(1, width + 1)]
    if len(set(columns)) != len(columns):
        raise ValueError(f"the columns' names repeat one another: {columns}")
    numbers = payload.get("numbers", False)
    rows = []
    for number, line in enumerate(lines, start=1):
        if len(line) > len(columns):
            raise ValueError(f"row {number} has {len(line)} cells for {len(columns)} columns")
        cells = [_value(cell, numbers) for cell in line]
        cells += [None] * (len(columns) - len(cells))
        rows.append(dict(zip(columns, cells, strict=True)))
    return {"columns": columns, "rows": rows, "count": len(rows)}


def _value(cell: str, numbers: bool) -> str | int | float:
    if not numbers or not NUMBER.fullmatch(cell):
        return cell
    if any(char in cell for char in ".eE"):
        real = float(cell)
        return real if math.isfinite(real) else cell
    whole = int(cell)
    return whole if -LARGEST <= whole < LARGEST else cell
