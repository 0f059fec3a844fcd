"""`CacheClient`: entries, batches, invalidation, fill leases and fenced locks of the cache service.

    async with CacheClient("http://127.0.0.1:8003", token=token) as cache:
        stored = await cache.put("users", "42", b'{"name": "Ada"}', tags=["stream:user-42"])
        found = await cache.get("users", "42")
        async with cache.lock("invoice-7", ttl_ms=10_000) as lease:
            await ledger.write(invoice, fence=lease.fence)   # refused downstream once stale
            if lease.lost.is_set():
                ...                                           # stop: another holder may act

`lock` renews the lease in the background every ttl/3. When a renewal is refused (another holder
took the lock) or none succeeded before the lease ran out, `lease.lost` is set at once, and
leaving the block raises `LockLost`: work done after that point may have overlapped another
holder's, which is why writes carry `lease.fence` for the downstream to check. `acquire`,
`renew` and `release` are the same steps one at a time, for a holder that outlives a process.
Every method returns the dataclasses of `outrigger.clients.cache_models`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from outrigger.clients.base import ServiceClient
from outrigger.clients.cache_models import (
    CachedValue,
    FoundEntry,
    HeldLock,
    LockLease,
    LockLost,
    Lookup,
    StoredEntry,
)
from outrigger.errors import Conflict, NotFound, OutriggerError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Mapping

    import httpx

__all__ = ["CacheClient", "LockLost"]


def _entry_path(namespace: str, key: str) -> str:
    segment = quote(key, safe="")
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")
    return f"/v1/cache/{quote(namespace, safe='')}/{segment}"


def _value(key: str, response: httpx.Response) -> CachedValue:
    control = response.headers.get("Cache-Control", "")
    max_age = int(control.removeprefix("max-age=")) if control.startswith("max-age=") else 0
    tags = response.headers.get("Cache-Tag", "")
    return CachedValue(
        key=key,
        value=response.content,
        content_type=response.headers.get("Content-Type", "application/octet-stream"),
        version=response.headers.get("ETag", "").strip('"'),
        max_age=max_age,
        tags=frozenset(tag for tag in tags.split(",") if tag),
        stale="stale" in response.headers.get("Cache-Status", ""),
    )


class CacheClient(ServiceClient):
    service = "cache"

    async def get(self, namespace: str, key: str) -> CachedValue | None:
        """The fresh entry, or None on a miss."""
        response = await self._request("GET", _entry_path(namespace, key), expect=(200, 404))
        return _value(key, response) if response.status_code == 200 else None

    async def lookup(
        self, namespace: str, key: str, *, lease_ms: int = 5000, wait_ms: int = 0
    ) -> Lookup:
        """A read with stampede protection (`?fill=lease`): see `Lookup`."""
        params = {"fill": "lease", "lease_ms": lease_ms, "wait_ms": wait_ms}
        path = _entry_path(namespace, key)
        response = await self._request(
            "GET", path, params=params, expect=(200, 404), waits=wait_ms / 1000
        )
        token = response.headers.get("Fill-Lease")
        if response.status_code == 200:
            return Lookup(_value(key, response), token)
        problem = self._json(response)
        return Lookup(None, token, int(problem.get("retry_after_ms") or 0))

    async def put(
        self,
        namespace: str,
        key: str,
        value: bytes | str,
        *,
        ttl: float | None = None,
        tags: Iterable[str] = (),
        content_type: str | None = None,
        swr: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
        fill_lease: str | None = None,
    ) -> StoredEntry:
        """Stores `value` (a str as UTF-8 text) for `ttl` seconds (default: the namespace's),
        and says what was stored: its new `version` is the `if_match` of a later compare and
        set. `if_match` a version: compare and set;
        `if_absent`: only if there is no fresh entry (both raise `PreconditionFailed`);
        `fill_lease`: fill with the token a `lookup` handed out (`Conflict` once it is gone)."""
        params: dict[str, Any] = {}
        if ttl is not None:
            params["ttl"] = ttl
        if swr is not None:
            params["swr"] = swr
        if tag_list := sorted(set(tags)):
            params["tags"] = ",".join(tag_list)
        headers = {"Content-Type": content_type or _content_type(value)}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        if if_absent:
            headers["If-None-Match"] = "*"
        if fill_lease is not None:
            headers["Fill-Lease"] = fill_lease
        body = _bytes(value)
        path = _entry_path(namespace, key)
        response = await self._request("PUT", path, params=params, content=body, headers=headers)
        return self._model(StoredEntry, response)

    async def delete(self, namespace: str, key: str, *, if_match: str | None = None) -> bool:
        """Removes the entry; False if there was none."""
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else None
        path = _entry_path(namespace, key)
        response = await self._request("DELETE", path, headers=headers, expect=(204, 404))
        return response.status_code == 204

    async def mget(self, namespace: str, keys: Iterable[str]) -> dict[str, CachedValue]:
        """The fresh entries among 1-1,000 keys, by key; misses are left out."""
        body = {"keys": list(keys), "encoding": "base64"}
        path = f"/v1/cache/{quote(namespace, safe='')}:mget"
        response = await self._request("POST", path, json=body)
        return {
            entry.key: CachedValue(
                key=entry.key,
                value=base64.b64decode(entry.value or ""),
                content_type=entry.content_type or "",
                version=entry.version or "",
                max_age=(entry.ttl_ms or 0) // 1000,
                tags=frozenset(entry.tags or ()),
            )
            for entry in self._model(_Found, response).entries
            if entry.found
        }

    async def mset(
        self,
        namespace: str,
        values: Mapping[str, bytes | str],
        *,
        ttl: float | None = None,
        tags: Iterable[str] = (),
    ) -> dict[str, StoredEntry]:
        """Stores 1-1,000 values, all or nothing; says what was stored, by key."""
        tag_list = sorted(set(tags))
        entries = [
            {
                "key": key,
                "value": base64.b64encode(_bytes(value)).decode(),
                "content_type": _content_type(value),
                "ttl": ttl,
                "tags": tag_list,
            }
            for key, value in values.items()
        ]
        path = f"/v1/cache/{quote(namespace, safe='')}:mset"
        body = {"entries": entries, "encoding": "base64"}
        response = await self._request("POST", path, json=body)
        return {entry.key: entry for entry in self._model(_Stored, response).entries}

    async def invalidate(
        self, namespace: str, *, tags: Iterable[str] | None = None, prefix: str | None = None
    ) -> int:
        """Removes the entries carrying any of `tags`, or whose key starts with `prefix`."""
        body: dict[str, Any] = {"tags": list(tags)} if tags is not None else {"prefix": prefix}
        path = f"/v1/cache/{quote(namespace, safe='')}:invalidate"
        return self._model(_Invalidated, await self._request("POST", path, json=body)).removed

    async def acquire(self, resource: str, *, ttl_ms: int = 30_000, wait_ms: int = 0) -> HeldLock:
        """Takes the lock for `ttl_ms` with a new token and a higher fence, waiting up to
        `wait_ms` for the holder; `Conflict` (with `Retry-After`) if it is still held."""
        body = {"ttl_ms": ttl_ms, "wait_ms": wait_ms}
        path = _lock_path(resource)
        response = await self._request("POST", path, json=body, waits=wait_ms / 1000)
        return self._model(HeldLock, response)

    async def renew(self, resource: str, token: str, *, ttl_ms: int = 30_000) -> HeldLock:
        """Extends the lease of the holder of `token` to `ttl_ms` from now, keeping its fence;
        `Conflict` if the lease was lost (stop the work the lock guards)."""
        body = {"token": token, "ttl_ms": ttl_ms}
        response = await self._request("POST", f"{_lock_path(resource)}:renew", json=body)
        return self._model(HeldLock, response)

    async def release(self, resource: str, token: str) -> None:
        """Frees the lock if `token` holds it; `Conflict` if its lease was already lost."""
        headers = {"Lock-Token": token}
        await self._request("DELETE", _lock_path(resource), headers=headers, expect=(204,))

    async def validate_fence(self, resource: str, fence: int) -> bool:
        """Whether `fence` is still the latest of the resource (no later acquire happened): a
        write guarded by the lock may go ahead only then."""
        path = f"{_lock_path(resource)}:validate"
        try:
            await self._request("POST", path, json={"fence": fence}, expect=(204,))
        except Conflict:
            return False
        return True

    @contextlib.asynccontextmanager
    async def lock(
        self, resource: str, *, ttl_ms: int = 30_000, wait_ms: int = 0
    ) -> AsyncIterator[LockLease]:
        """Holds the lock for the block, renewing at ttl/3, releasing on exit; `Conflict` if
        another holder keeps it past `wait_ms`, `LockLost` on exit if the lease was lost."""
        started = time.monotonic()
        held = await self.acquire(resource, ttl_ms=ttl_ms, wait_ms=wait_ms)
        lease = LockLease(resource, held.token, held.fence, ttl_ms)
        renewing = asyncio.create_task(self._keep(lease, started + ttl_ms / 1000))
        try:
            yield lease
        except BaseException:
            await self._end(lease, renewing)
            raise
        await self._end(lease, renewing)
        if lease.lost.is_set():
            raise LockLost(
                f"lock {resource!r} was lost while held ({lease.lost_because}); work done "
                "after that may have overlapped another holder's",
                resource=resource,
                fence=lease.fence,
            )

    async def _keep(self, lease: LockLease, valid_until: float) -> None:
        """Renews every ttl/3 until cancelled; marks the lease lost when it surely is."""
        ttl = lease.ttl_ms / 1000
        while True:
            await asyncio.sleep(min(ttl / 3, max(valid_until - time.monotonic(), 0)))
            started = time.monotonic()
            if started >= valid_until:
                lease.lose("no renewal succeeded before the lease ran out")
                return
            try:
                async with asyncio.timeout(valid_until - started):
                    await self.renew(lease.resource, lease.token, ttl_ms=lease.ttl_ms)
            except Conflict:
                lease.lose("another holder took the lock after its lease ran out")
                return
            except (OutriggerError, TimeoutError):
                continue  # unreachable for now: try again while the lease lasts
            valid_until = started + ttl

    async def _end(self, lease: LockLease, renewing: asyncio.Task[None]) -> None:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        if lease.lost.is_set():
            return
        try:
            await self.release(lease.resource, lease.token)
        except (Conflict, NotFound):
            lease.lose("the lease ran out before the release")
        except OutriggerError:
            pass  # the service is unreachable: the lease runs out by itself


@dataclass(frozen=True, slots=True)
class _Found:
    entries: tuple[FoundEntry, ...]


@dataclass(frozen=True, slots=True)
class _Stored:
    entries: tuple[StoredEntry, ...]


@dataclass(frozen=True, slots=True)
class _Invalidated:
    removed: int


def _lock_path(resource: str) -> str:
    return f"/v1/locks/{quote(resource, safe='')}"


def _content_type(value: bytes | str) -> str:
    return "text/plain; charset=utf-8" if isinstance(value, str) else "application/octet-stream"


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
