"""What the cache's OpenAPI document says that depends on the settings: the longest TTL.

A TTL or stale window (`ttl`, `swr`, in seconds) is bounded where it enters by a year, and then
by its namespace's maximum (`OUTRIGGER_CACHE_NAMESPACE_TTLS`, else
`OUTRIGGER_CACHE_MAX_TTL_SECONDS`). The document states the smallest of those maxima, so every
value it allows is accepted in every namespace; a namespace with a higher maximum takes more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from services.cache.domain import CacheLimits

TTL_FIELDS = ("ttl", "swr")


def longest_ttl_everywhere(document: dict[str, Any], limits: CacheLimits) -> dict[str, Any]:
    """Sets the `maximum` of every TTL field of `document` (parameters and body fields) to the
    smallest namespace maximum, in seconds; returns the document."""
    seconds = min(policy.max_ms for policy in [limits.ttl, *limits.namespaces.values()]) / 1000
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] in TTL_FIELDS:
                    parameter["schema"]["maximum"] = seconds
    for schema in document.get("components", {}).get("schemas", {}).values():
        for name, field in schema.get("properties", {}).items():
            if name in TTL_FIELDS:
                field["maximum"] = seconds
    return document


def document_ttl_limits(app: FastAPI, limits: CacheLimits) -> None:
    """Makes `app.openapi()` state the longest TTL every namespace accepts."""
    generate = app.openapi
    done = False

    def openapi() -> dict[str, Any]:
        nonlocal done
        document = generate()
        if not done:
            done = True
            longest_ttl_everywhere(document, limits)
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's way to extend its document
