"""HTTP semantics of cache entries: ETags and conditions, freshness headers, query values.

An ETag is the entry's version in double quotes. `If-None-Match` uses the weak comparison (RFC
9110 §13.1.2: `W/"v"` matches `"v"`), `If-Match` the strong one (a weak tag never matches).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from outrigger.errors import InvalidInput
from services.cache.domain import IF_NONE_MATCH_ANY, UNCONDITIONAL, WriteCondition

if TYPE_CHECKING:
    from services.cache.domain import Entry

FILL_LEASE = "Fill-Lease"
CACHE_STATUS = "Cache-Status"


def etag_matches(if_none_match: str, version: str) -> bool:
    """Whether an `If-None-Match` header names `version` (or is `*`)."""
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/").strip('"') == version:
            return True
    return False


def entry_headers(entry: Entry) -> dict[str, str]:
    """ETag, Cache-Control (the freshness left) and, for a stale entry, a Cache-Status saying so
    (RFC 9211: a negative `ttl` is how stale it is, here in whole seconds)."""
    headers = {"ETag": f'"{entry.version}"', "Cache-Control": f"max-age={entry.ttl_ms // 1000}"}
    if entry.tags:
        headers["Cache-Tag"] = ",".join(sorted(entry.tags))
    if entry.stale:
        headers[CACHE_STATUS] = "outrigger; hit; detail=stale"
    return headers


def write_condition(if_match_header: str | None, if_none_match: str | None) -> WriteCondition:
    """The condition of a PUT or DELETE: `If-Match: "<version>"`, `If-None-Match: *`, or both
    (which never hold)."""
    absent = if_none_match is not None
    if if_none_match is not None and if_none_match.strip() != "*":
        raise InvalidInput(
            "a write takes only If-None-Match: * (store if absent); to compare versions "
            'send If-Match: "<version>"'
        )
    if if_match_header is None:
        return IF_NONE_MATCH_ANY if absent else UNCONDITIONAL
    tag = if_match_header.strip()
    if tag == "*" or "," in tag:
        raise InvalidInput(
            'If-Match takes exactly one ETag, as read from the entry: If-Match: "<version>"'
        )
    version = tag if tag.startswith("W/") else tag.strip('"')  # weak: never matches (412)
    return WriteCondition(if_match=version, if_none_match_any=absent)


def tag_set(tags: str | None) -> frozenset[str]:
    """The tags of a `tags=a,b` query value; spaces around them and blank entries are ignored."""
    if not tags:
        return frozenset()
    return frozenset(tag.strip() for tag in tags.split(",") if tag.strip())
