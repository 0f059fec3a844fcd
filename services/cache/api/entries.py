"""One entry: read it, write it, delete it. `/v1/cache/{namespace}/{key}`; keys may hold `/`.

A read is the hot path: it returns the stored bytes as a raw response, with no model in between.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from outrigger.auth import Principal, Scopes, require_scope
from outrigger.errors import InvalidInput, NotFound, TooLarge
from outrigger.http import TemplateRoute
from services.cache import metrics
from services.cache.api import docs
from services.cache.api.context import Running  # noqa: TC001 (FastAPI reads it at runtime)
from services.cache.api.headers import (
    FILL_LEASE,
    entry_headers,
    etag_matches,
    milliseconds,
    tag_set,
    write_condition,
)
from services.cache.api.schemas import PLAIN_READ, ReadOptions, StoredEntry
from services.cache.domain import (
    DEFAULT_CONTENT_TYPE,
    UNCONDITIONAL,
    CacheStore,
    Entry,
    Lookup,
    Write,
)

router = APIRouter(prefix="/v1/cache", tags=["entries"])
can_read = require_scope(Scopes.CACHE_READ).dependency
ENTRY = "/{namespace}/{key:path}"


async def read_entry(request: Request) -> Response:
    """The stored bytes with their Content-Type, ETag and Cache-Control; 404 on a miss.

    The hot path: a plain Starlette endpoint that reads path, query and headers straight from
    the request (they are documented in `docs.READ_OPENAPI`), served by `READ_ROUTE`.
    """
    await can_read(request, None)
    namespace, key = request.path_params["namespace"], request.path_params["key"]
    store: CacheStore = request.app.state.cache.store
    if_none_match = request.headers.get("if-none-match")
    options = ReadOptions.of(request) if request.scope["query_string"] else PLAIN_READ
    if options.fill is None:
        entry = await store.get(namespace, key)
        metrics.looked_up(namespace, entry is not None, entry is None)
        if entry is None:
            raise miss(namespace, key)
        return entry_response(entry, if_none_match)
    found = await store.acquire_fill_lease(
        namespace, key, lease_ms=options.lease_ms, wait_ms=options.wait_ms
    )
    return lookup_response(namespace, key, found, if_none_match)


# `READ_ROUTE` serves reads ahead of every router (see `services.cache.app`): FastAPI's parameter
# machinery and nested routers cost more than the whole read. The route below only documents it.
READ_ROUTE = TemplateRoute(router.prefix + ENTRY, read_entry, methods=["GET"], name="read_entry")
router.add_api_route(
    ENTRY, read_entry, methods=["GET"], responses=docs.READ, openapi_extra=docs.READ_OPENAPI
)


@router.put(ENTRY, dependencies=[require_scope(Scopes.CACHE_WRITE)], responses=docs.WRITE)
async def write_entry(
    request: Request,
    response: Response,
    namespace: str,
    key: str,
    running: Running,
    ttl: Annotated[float | None, Query(gt=0, allow_inf_nan=False, description=docs.TTL)] = None,
    swr: Annotated[float | None, Query(ge=0, allow_inf_nan=False, description=docs.SWR)] = None,
    tags: Annotated[str | None, Query(description="comma-separated, e.g. stream:order-7")] = None,
    content_type: Annotated[str, Header()] = DEFAULT_CONTENT_TYPE,
    if_match: Annotated[str | None, Header()] = None,
    if_none_match: Annotated[str | None, Header()] = None,
    fill_lease: Annotated[str | None, Header(description=docs.FILL_WITH)] = None,
) -> StoredEntry:
    """Stores the body under a new version; `If-Match` compares and sets, `If-None-Match: *`
    stores only if absent, `Fill-Lease` fills a key whose lease this caller holds."""
    value = await read_value(request, running.max_value_bytes)
    write = Write(
        key,
        value,
        content_type=content_type,
        ttl_ms=milliseconds("ttl", ttl),
        swr_ms=milliseconds("swr", swr) or 0,
        tags=tag_set(tags),
    )
    condition = write_condition(if_match, if_none_match)
    if fill_lease is None:
        entry = await running.store.put(namespace, write, condition)
    elif condition is UNCONDITIONAL:
        entry = await running.store.fill(namespace, write, fill_lease)
    else:
        raise InvalidInput("a fill (Fill-Lease) is unconditional: drop If-Match / If-None-Match")
    response.headers["ETag"] = entry.etag
    return StoredEntry.of(entry)


@router.delete(ENTRY, status_code=204, responses=docs.DELETE)
async def delete_entry(
    namespace: str,
    key: str,
    running: Running,
    principal: Annotated[Principal, require_scope(Scopes.CACHE_WRITE)],
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Removes the entry (fresh or stale) and voids its fill lease; 404 if there was none."""
    if not await running.store.delete(namespace, key, write_condition(if_match, None)):
        raise miss(namespace, key)
    await running.audit.record("delete", actor=principal.subject, target=f"{namespace}/{key}")
    return Response(status_code=204)


def entry_response(entry: Entry, if_none_match: str | None, **extra: str) -> Response:
    """200 with the bytes and their Content-Type as stored (no charset added), or 304."""
    headers = entry_headers(entry)
    headers.update(extra)
    if if_none_match is not None and etag_matches(if_none_match, entry.version):
        return Response(status_code=304, headers=headers)
    headers["Content-Type"] = entry.content_type
    return Response(entry.value, headers=headers)


def lookup_response(namespace: str, key: str, found: Lookup, if_none_match: str | None) -> Response:
    """A fresh hit; else the stale copy (with the lease if this caller must refill); else a
    404 with the lease, or with how long to wait for the caller who is filling."""
    entry, lease = found.entry, found.lease
    metrics.looked_up(
        namespace, entry is not None and not entry.stale, entry is None or entry.stale
    )
    if lease is not None:
        metrics.FILL_LEASES.labels(namespace).inc()
    if entry is not None:
        if entry.stale:
            metrics.STALE_SERVED.labels(namespace).inc()
        grant = {FILL_LEASE: lease.token} if lease is not None else {}
        return entry_response(entry, if_none_match, **grant)
    if lease is not None:
        error = miss(namespace, key, lease={"token": lease.token, "ttl_ms": lease.ttl_ms})
        error.headers[FILL_LEASE] = lease.token
        raise error
    metrics.FILL_WAITS.labels(namespace).inc()
    wait = found.retry_after_ms
    error = miss(
        namespace,
        key,
        retry_after_ms=wait,
        detail=f"another caller is filling it; retry in {wait} ms",
    )
    error.headers["Retry-After"] = str(-(-wait // 1000))
    raise error


def miss(namespace: str, key: str, *, detail: str = "", **members: Any) -> NotFound:
    reason = detail or "it was never stored, expired, or was deleted or invalidated"
    return NotFound(
        f"no fresh entry {key!r:.80} in namespace {namespace!r}: {reason}",
        namespace=namespace,
        key=key,
        **members,
    )


async def read_value(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(f"{int(declared):,} bytes", limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"over {limit:,} bytes", limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(size: str, limit: int) -> TooLarge:
    return TooLarge(
        f"the value is {size}; values are at most {limit:,} bytes "
        "(OUTRIGGER_CACHE_MAX_VALUE_BYTES); nothing was stored",
        max_value_bytes=limit,
    )
