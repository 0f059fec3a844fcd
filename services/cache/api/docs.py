"""What the OpenAPI document says about the cache routes beyond their signatures."""

from __future__ import annotations

from typing import Any

from services.cache.api.schemas import Miss

PROBLEM: dict[str, Any] = {"application/problem+json": {}}

FILL = (
    "`lease`: on a miss, the first caller gets a fill lease (404 with `lease`, or the stale "
    "copy with a `Fill-Lease` header) and fills the key with PUT + `Fill-Lease`; the others get "
    "the stale copy at once, or wait up to `wait_ms` for the fill, then a 404 with "
    "`retry_after_ms` and `Retry-After`."
)
WAIT = "with fill=lease: how long to wait for another caller's fill before answering"
TTL = "freshness in seconds (fractions allowed); default: the namespace's"
SWR = "stale-while-revalidate window in seconds after the TTL (served to fill=lease readers)"
FILL_WITH = "the lease token a fill=lease read handed out: this PUT fills that key"

_ETAG = {"description": "the entry's version, quoted", "schema": {"type": "string"}}
_CACHE_CONTROL = {"description": "max-age=<whole seconds of freshness left>"}

READ: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The stored bytes, with the Content-Type they were stored with.",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            "ETag": _ETAG,
            "Cache-Control": _CACHE_CONTROL,
            "Cache-Tag": {"description": "the entry's tags, comma-separated"},
            "Cache-Status": {
                "description": "`outrigger; hit; detail=stale` when the entry is stale (fill=lease)"
            },
            "Fill-Lease": {"description": "fill=lease: this caller must refill the stale entry"},
        },
    },
    304: {"description": "If-None-Match names the current version.", "headers": {"ETag": _ETAG}},
    404: {
        "model": Miss,
        "content": PROBLEM,
        "description": "A miss. With fill=lease: `lease` (fill it) or `retry_after_ms` (wait).",
    },
}
WRITE: dict[int | str, dict[str, Any]] = {
    200: {"description": "Stored.", "headers": {"ETag": _ETAG}},
    409: {"content": PROBLEM, "description": "Fill-Lease: the lease is gone; nothing stored."},
    412: {"content": PROBLEM, "description": "If-Match / If-None-Match: * did not hold."},
    413: {"content": PROBLEM, "description": "The value is over the size limit."},
}
DELETE: dict[int | str, dict[str, Any]] = {
    404: {"content": PROBLEM, "description": "There was no entry."},
    412: {"content": PROBLEM, "description": "If-Match did not hold."},
}
HELD_ELSEWHERE: dict[int | str, dict[str, Any]] = {
    409: {"content": PROBLEM, "description": "Not (or no longer) the holder."}
}

READ_OPENAPI: dict[str, Any] = {
    "security": [{"bearer": ["cache:read"]}],
    "parameters": [
        {
            "name": "namespace",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
        },
        {
            "name": "key",
            "in": "path",
            "required": True,
            "description": "1-512 bytes of UTF-8; may contain /",
            "schema": {"type": "string"},
        },
        {
            "name": "fill",
            "in": "query",
            "description": FILL,
            "schema": {"type": "string", "enum": ["lease"]},
        },
        {
            "name": "lease_ms",
            "in": "query",
            "description": "with fill=lease: the lease length",
            "schema": {"type": "integer", "minimum": 1, "maximum": 60000, "default": 5000},
        },
        {
            "name": "wait_ms",
            "in": "query",
            "description": WAIT,
            "schema": {"type": "integer", "minimum": 0, "maximum": 60000, "default": 0},
        },
        {
            "name": "If-None-Match",
            "in": "header",
            "description": "ETags, or *: 304 if one names the current version",
            "schema": {"type": "string"},
        },
    ],
}
