"""Jobs' state in the cache service, over its HTTP API with the SDK's `CacheClient`: any replica
answers for any job.

Each job is one JSON entry of namespace `jobs` (its key the job id), written whole with the
store's TTL, so a job is forgotten that long after its last change. `create` writes with
`If-None-Match: *`, so of two replicas creating one id exactly one wins and the other reads
the winner's. Calls go through the kit's named resilience policy `cache` (retries, circuit
breaker) with a timeout per exchange; whatever keeps an answer from coming (the service down,
the breaker open, a refused token, an entry that is no job) is `JobStateUnavailable`.

The token: a fixed one, or a function minting one (the service's own key, scopes `cache:read`
and `cache:write`), called again every `renew_seconds`; the client of the previous token is
closed at the renewal after, so requests under way finish.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from outrigger.clients import CacheClient
from outrigger.errors import OutriggerError, PreconditionFailed
from services.plugin_executor.domain import (
    Job,
    JobState,
    JobStateUnavailable,
    Outcome,
    Progress,
    Reason,
    Usage,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

NAMESPACE: Final = "jobs"
POLICY: Final = "cache"  # the kit's named policy `CacheClient` calls through
JSON: Final = "application/json"


class CacheJobStore:
    """A `JobStore` in the cache service at `url`."""

    def __init__(
        self,
        url: str,
        token: str | Callable[[], str],
        *,
        ttl_seconds: float,
        renew_seconds: float = 1800.0,
        namespace: str = NAMESPACE,
        timeout: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.ttl = ttl_seconds
        self.namespace = namespace
        self._token = token
        self._renew = renew_seconds
        self._timeout = timeout
        self._transport = transport
        self._client: CacheClient | None = None
        self._since = 0.0
        self._retired: list[CacheClient] = []
        self._closing: set[asyncio.Task[None]] = set()

    async def create(self, job: Job) -> Job:
        for _ in range(2):  # the kept one may expire between the refused write and the read
            try:
                await self._cache().put(
                    self.namespace,
                    job.id,
                    encode(job),
                    ttl=self.ttl,
                    content_type=JSON,
                    if_absent=True,
                )
            except PreconditionFailed:
                kept = await self.get(job.id)
                if kept is not None:
                    return kept
                continue
            except OutriggerError as exc:
                raise self._unavailable("keep", exc) from exc
            return job
        raise JobStateUnavailable(f"job {job.id} kept appearing and expiring in the cache")

    async def get(self, job_id: str) -> Job | None:
        try:
            found = await self._cache().get(self.namespace, job_id)
        except OutriggerError as exc:
            raise self._unavailable("read", exc) from exc
        if found is None:
            return None
        try:
            return decode(found.value)
        except (ValueError, KeyError, TypeError) as exc:
            raise JobStateUnavailable(
                f"the cache holds an entry for job {job_id} that is no job ({exc})"
            ) from exc

    async def update(self, job: Job) -> None:
        try:
            await self._cache().put(
                self.namespace, job.id, encode(job), ttl=self.ttl, content_type=JSON
            )
        except OutriggerError as exc:
            raise self._unavailable("write", exc) from exc

    async def discard(self, job_id: str) -> None:
        try:
            await self._cache().delete(self.namespace, job_id)
        except OutriggerError as exc:
            raise self._unavailable("remove", exc) from exc

    async def check(self) -> None:
        """A read of a key no job has: a miss is an answer."""
        await self.get("readiness-check")

    async def close(self) -> None:
        clients, self._retired = self._retired, []
        if self._client is not None:
            clients.append(self._client)
            self._client = None
        for client in clients:
            await client.aclose()
        if self._closing:
            await asyncio.wait(self._closing)

    def _cache(self) -> CacheClient:
        """The client, with a token minted anew every `renew_seconds` (for a minted token)."""
        now = time.monotonic()
        client = self._client
        if client is not None and (isinstance(self._token, str) or now - self._since < self._renew):
            return client
        token = self._token if isinstance(self._token, str) else self._token()
        fresh = CacheClient(self.url, token=token, timeout=self._timeout, transport=self._transport)
        if client is not None:
            for old in self._retired:  # they had a whole renewal period to finish
                task = asyncio.get_running_loop().create_task(old.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            self._retired = [client]
        self._client, self._since = fresh, now
        return fresh

    def _unavailable(self, doing: str, exc: OutriggerError) -> JobStateUnavailable:
        return JobStateUnavailable(
            f"cannot {doing} jobs' state in the cache service at {self.url}: {exc.detail}"
        )


def encode(job: Job) -> bytes:
    """A job as the JSON entry kept in the cache."""
    outcome = job.outcome
    return orjson.dumps(
        {
            "id": job.id,
            "plugin": job.plugin,
            "owner": job.owner,
            "fingerprint": job.fingerprint,
            "state": job.state.value,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "version": job.version,
            "progress": None if job.progress is None else asdict(job.progress),
            "outcome": None
            if outcome is None
            else {
                "reason": outcome.reason.value,
                "result": outcome.result,
                "detail": outcome.detail,
                "usage": asdict(outcome.usage),
            },
        }
    )


def decode(value: bytes) -> Job:
    """The job a cache entry holds; ValueError, KeyError or TypeError if it holds none."""
    entry: dict[str, Any] = orjson.loads(value)
    progress, outcome = entry["progress"], entry["outcome"]
    return Job(
        id=entry["id"],
        plugin=entry["plugin"],
        owner=entry["owner"],
        fingerprint=entry["fingerprint"],
        state=JobState(entry["state"]),
        created_at=datetime.fromisoformat(entry["created_at"]),
        updated_at=datetime.fromisoformat(entry["updated_at"]),
        version=entry["version"],
        progress=None
        if progress is None
        else Progress(float(progress["progress"]), progress["message"]),
        outcome=None
        if outcome is None
        else Outcome(
            Reason(outcome["reason"]),
            Usage(**outcome["usage"]),
            result=outcome["result"],
            detail=outcome["detail"],
        ),
    )
