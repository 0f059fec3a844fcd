"""Names no other test, test run or engineer on the same servers uses."""

from __future__ import annotations

import uuid


def unique(prefix: str) -> str:
    """`prefix` and 12 random hex digits: a stream, key prefix, queue or namespace of its own."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"
