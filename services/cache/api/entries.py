"""One entry: read it, write it, delete it. `/v1/cache/{namespace}/{key}`; keys may hold `/`.

A read is the hot path: one `RequestRoute` that reads its own parameters and returns the stored
bytes as a raw response, with no model in between; its declaration describes it in OpenAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response

from outrigger.auth import Principal, Scopes, require_scope
from outrigger.errors import NotFound, TooLarge
from outrigger.http import RequestRoute, ServiceRoute, problem_responses
from outrigger.http.openapi import parameter, query_parameters
from services.cache.api.context import Entries  # noqa: TC001 (FastAPI reads it at runtime)
from services.cache.api.headers import (
    FILL_LEASE,
    entry_headers,
    etag_matches,
    tag_set,
    write_condition,
)
from services.cache.api.schemas import (
    CONTENT_TYPE_SCHEMA,
    NAMESPACE_SCHEMA,
    PATH_KEY_SCHEMA,
    PLAIN_READ,
    SWR,
    TAG_LIST_PATTERN,
    TTL,
    MaybeSeconds,
    ReadOptions,
    StoredEntry,
    Window,
    milliseconds,
)
from services.cache.domain import DEFAULT_CONTENT_TYPE, Entry, Lookup, Write

if TYPE_CHECKING:
    from services.cache.service import CacheService

PREFIX = "/v1/cache"
ENTRY = "/{namespace}/{key:path}"
KEY = "1-512 characters without line feeds; may hold `/` (percent-encode the others)"
router = APIRouter(prefix=PREFIX, tags=["entries"], route_class=ServiceRoute)
Namespace = Annotated[str, Path(json_schema_extra=NAMESPACE_SCHEMA)]
Key = Annotated[str, Path(description=KEY, json_schema_extra=PATH_KEY_SCHEMA)]
ETAG = {"description": "the entry's version, quoted", "schema": {"type": "string"}}


async def read_entry(request: Request) -> Response:
    """The stored bytes with their Content-Type, ETag and Cache-Control; 404 on a miss."""
    cache: CacheService = request.app.state.cache
    namespace, key = request.path_params["namespace"], request.path_params["key"]
    if_none_match = request.headers.get("if-none-match")
    options = ReadOptions.of(request) if request.scope["query_string"] else PLAIN_READ
    if options.fill is None:
        entry = await cache.read(namespace, key)
        if entry is None:
            raise miss(namespace, key)
        return entry_response(entry, if_none_match)
    found = await cache.read_or_lease(
        namespace, key, lease_ms=options.lease_ms, wait_ms=options.wait_ms
    )
    return lookup_response(namespace, key, found, if_none_match)


READ = RequestRoute(
    PREFIX + ENTRY,
    read_entry,
    methods=["GET"],
    scopes=[Scopes.CACHE_READ],
    name="read_entry",
    tags=["entries"],
    summary="Read Entry",
    response_class=Response,
    responses={
        200: {
            "description": "The stored bytes, with the Content-Type they were stored with.",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            "headers": {
                "ETag": ETAG,
                "Cache-Control": {"description": "max-age=<whole seconds of freshness left>"},
                "Cache-Tag": {"description": "the entry's tags, comma-separated"},
                "Cache-Status": {"description": "`outrigger; hit; detail=stale` (fill=lease)"},
                "Fill-Lease": {"description": "fill=lease: this caller must refill the entry"},
            },
        },
        304: {"description": "If-None-Match names the current version.", "headers": {"ETag": ETAG}},
        **problem_responses(
            {
                404: "A miss. With fill=lease the problem carries `lease` ({token, ttl_ms}: fill "
                "the key) or `retry_after_ms` (another caller is filling it; also Retry-After)."
            }
        ),
    },
    openapi_extra={
        "parameters": [
            parameter("namespace", "path", {"type": "string", **NAMESPACE_SCHEMA}),
            parameter("key", "path", {"type": "string", **PATH_KEY_SCHEMA}, KEY),
            *query_parameters(ReadOptions),
            parameter(
                "If-None-Match",
                "header",
                {"type": "string"},
                "ETags, or *: 304 if one names the current version",
            ),
        ],
    },
)


@router.put(
    ENTRY,
    dependencies=[require_scope(Scopes.CACHE_WRITE)],
    responses={
        200: {"description": "Stored.", "headers": {"ETag": ETAG}},
        **problem_responses(
            {
                409: "Fill-Lease: the lease is gone; nothing was stored.",
                412: "If-Match / If-None-Match did not hold (`current_version`).",
            }
        ),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def write_entry(
    request: Request,
    response: Response,
    namespace: Namespace,
    key: Key,
    cache: Entries,
    ttl: Annotated[MaybeSeconds, Query(description=TTL)] = None,
    swr: Annotated[Window, Query(description=SWR)] = 0,
    tags: Annotated[
        str | None,
        Query(
            description="comma-separated, e.g. stream:order-7,users",
            json_schema_extra={"pattern": TAG_LIST_PATTERN},
        ),
    ] = None,
    content_type: Annotated[str, Header(json_schema_extra=CONTENT_TYPE_SCHEMA)] = (
        DEFAULT_CONTENT_TYPE
    ),
    if_match: Annotated[
        str | None,
        Header(description="the version to replace", json_schema_extra={"pattern": "^[^,*]*$"}),
    ] = None,
    if_none_match: Annotated[
        str | None,
        Header(description="*: store only if absent", json_schema_extra={"pattern": r"^ *\* *$"}),
    ] = None,
    fill_lease: Annotated[
        str | None, Header(description="the lease a fill=lease read handed out: fill its key")
    ] = None,
) -> StoredEntry:
    """Stores the body under a new version; `If-Match` compares and sets, `If-None-Match: *`
    stores only if absent, `Fill-Lease` fills a key whose lease this caller holds."""
    value = await read_value(request, cache.limits.max_value_bytes)
    write = Write(
        key,
        value,
        content_type=content_type,
        ttl_ms=None if ttl is None else milliseconds(ttl),
        swr_ms=milliseconds(swr),
        tags=tag_set(tags),
    )
    condition = write_condition(if_match, if_none_match)
    entry = await cache.write(namespace, write, condition, fill_lease=fill_lease)
    response.headers["ETag"] = entry.etag
    return StoredEntry.of(entry)


@router.delete(
    ENTRY,
    status_code=204,
    responses=problem_responses(
        {404: "There was no entry.", 412: "If-Match did not hold (`current_version`)."}
    ),
)
async def delete_entry(
    namespace: Namespace,
    key: Key,
    cache: Entries,
    principal: Annotated[Principal, require_scope(Scopes.CACHE_WRITE)],
    if_match: Annotated[
        str | None,
        Header(description="the version to delete", json_schema_extra={"pattern": "^[^,*]*$"}),
    ] = None,
) -> Response:
    """Removes the entry (fresh or stale) and voids its fill lease; 404 if there was none."""
    condition = write_condition(if_match, None)
    if not await cache.delete(namespace, key, condition, actor=principal.subject):
        raise miss(namespace, key)
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
    if entry is not None:
        grant = {FILL_LEASE: lease.token} if lease is not None else {}
        return entry_response(entry, if_none_match, **grant)
    if lease is not None:
        error = miss(namespace, key, lease={"token": lease.token, "ttl_ms": lease.ttl_ms})
        error.headers[FILL_LEASE] = lease.token
        raise error
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
