"""Many keys of one namespace in one round trip: `:mget`, `:mset`, and `:invalidate`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from outrigger.auth import Principal, Scopes, require_scope
from outrigger.http import ServiceRoute
from services.cache.api.context import Entries  # noqa: TC001 (FastAPI resolves it at runtime)
from services.cache.api.schemas import (
    NAMESPACE_SCHEMA,
    FoundEntry,
    Invalidated,
    InvalidateRequest,
    MgetRequest,
    MgetResponse,
    MsetRequest,
    MsetResponse,
    StoredEntry,
    decode_value,
    milliseconds,
)
from services.cache.domain import Write

router = APIRouter(prefix="/v1/cache", tags=["batches"], route_class=ServiceRoute)
Namespace = Annotated[str, Path(json_schema_extra=NAMESPACE_SCHEMA)]


@router.post(
    "/{namespace}:mget",
    dependencies=[require_scope(Scopes.CACHE_READ)],
)
async def read_many(namespace: Namespace, batch: MgetRequest, cache: Entries) -> MgetResponse:
    """The fresh entries of 1-1,000 distinct keys, in the order asked; `found: false` on a miss."""
    entries = await cache.read_many(namespace, batch.keys)
    return MgetResponse(
        entries=[
            FoundEntry.of(key, entry, batch.encoding)
            for key, entry in zip(batch.keys, entries, strict=True)
        ]
    )


@router.post(
    "/{namespace}:mset",
    dependencies=[require_scope(Scopes.CACHE_WRITE)],
)
async def write_many(namespace: Namespace, batch: MsetRequest, cache: Entries) -> MsetResponse:
    """Stores 1-1,000 entries, all or nothing: one bad entry refuses the whole batch."""
    writes = [
        Write(
            item.key,
            decode_value(item.value, batch.encoding, item.key),
            content_type=item.content_type,
            ttl_ms=None if item.ttl is None else milliseconds(item.ttl),
            swr_ms=milliseconds(item.swr),
            tags=frozenset(item.tags),
        )
        for item in batch.entries
    ]
    stored = await cache.write_many(namespace, writes)
    return MsetResponse(entries=[StoredEntry.of(entry) for entry in stored])


@router.post("/{namespace}:invalidate")
async def invalidate(
    namespace: Namespace,
    criterion: InvalidateRequest,
    cache: Entries,
    principal: Annotated[Principal, require_scope(Scopes.CACHE_WRITE)],
) -> Invalidated:
    """Removes every entry carrying any of `tags` (atomically), or whose key starts with
    `prefix` (walking the keyspace; a key written meanwhile may survive)."""
    removed = await cache.invalidate(
        namespace, tags=criterion.tags, prefix=criterion.prefix, actor=principal.subject
    )
    return Invalidated(removed=removed)
