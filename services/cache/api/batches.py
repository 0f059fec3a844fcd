"""Many keys of one namespace in one round trip: `:mget`, `:mset`, and `:invalidate`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from outrigger.auth import Principal, Scopes, require_scope
from services.cache import metrics
from services.cache.api.context import Running  # noqa: TC001 (FastAPI resolves it at runtime)
from services.cache.api.headers import milliseconds
from services.cache.api.schemas import (
    FoundEntry,
    Invalidated,
    InvalidateRequest,
    MgetRequest,
    MgetResponse,
    MsetRequest,
    MsetResponse,
    StoredEntry,
    decode_value,
)
from services.cache.domain import Write

router = APIRouter(prefix="/v1/cache", tags=["batches"])


@router.post("/{namespace}:mget", dependencies=[require_scope(Scopes.CACHE_READ)])
async def read_many(namespace: str, batch: MgetRequest, running: Running) -> MgetResponse:
    """The fresh entries of 1-1,000 distinct keys, in the order asked; `found: false` on a miss."""
    entries = await running.store.mget(namespace, batch.keys)
    hits = sum(entry is not None for entry in entries)
    metrics.looked_up(namespace, hits, len(entries) - hits)
    return MgetResponse(
        entries=[
            FoundEntry.of(key, entry, batch.encoding)
            for key, entry in zip(batch.keys, entries, strict=True)
        ]
    )


@router.post("/{namespace}:mset", dependencies=[require_scope(Scopes.CACHE_WRITE)])
async def write_many(namespace: str, batch: MsetRequest, running: Running) -> MsetResponse:
    """Stores 1-1,000 entries, all or nothing: one bad entry refuses the whole batch."""
    writes = [
        Write(
            item.key,
            decode_value(item.value, batch.encoding, item.key),
            content_type=item.content_type,
            ttl_ms=milliseconds("ttl", item.ttl),
            swr_ms=milliseconds("swr", item.swr) or 0,
            tags=frozenset(item.tags),
        )
        for item in batch.entries
    ]
    stored = await running.store.mset(namespace, writes)
    return MsetResponse(entries=[StoredEntry.of(entry) for entry in stored])


@router.post("/{namespace}:invalidate")
async def invalidate(
    namespace: str,
    criterion: InvalidateRequest,
    running: Running,
    principal: Annotated[Principal, require_scope(Scopes.CACHE_WRITE)],
) -> Invalidated:
    """Removes every entry carrying any of `tags` (atomically), or whose key starts with
    `prefix` (walking the keyspace; a key written meanwhile may survive)."""
    if criterion.tags is not None:
        removed = await running.store.invalidate_tags(namespace, criterion.tags)
        how: dict[str, Any] = {"tags": sorted(set(criterion.tags))}
    else:
        prefix = criterion.prefix or ""
        removed = await running.store.invalidate_prefix(namespace, prefix)
        how = {"prefix": prefix}
    metrics.INVALIDATIONS.labels("api").inc()
    metrics.INVALIDATED_ENTRIES.labels("api").inc(removed)
    await running.audit.record(
        "invalidate", actor=principal.subject, target=namespace, details={"removed": removed, **how}
    )
    return Invalidated(removed=removed)
