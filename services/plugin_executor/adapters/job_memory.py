"""Jobs' state in this process's memory: the embedded store (`make run`, `outrigger dev` with
`OUTRIGGER_CACHE_URL=memory://`) and fast tests. One replica's jobs only, gone with the
process; each job forgotten `ttl_seconds` after its last write, as the cache would."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.plugin_executor.domain import Job


class MemoryJobStore:
    """A `JobStore` in a dict, expiring lazily."""

    def __init__(self, *, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._jobs: dict[str, tuple[float, Job]] = {}

    async def create(self, job: Job) -> Job:
        kept = self._fresh(job.id)
        if kept is not None:
            return kept
        self._put(job)
        return job

    async def get(self, job_id: str) -> Job | None:
        return self._fresh(job_id)

    async def update(self, job: Job) -> None:
        self._put(job)

    async def discard(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        self._jobs.clear()

    def _put(self, job: Job) -> None:
        now = time.monotonic()
        self._jobs[job.id] = (now + self.ttl, job)
        if len(self._jobs) % 1024 == 0:  # now and then, sweep what expired
            self._jobs = {key: kept for key, kept in self._jobs.items() if kept[0] > now}

    def _fresh(self, job_id: str) -> Job | None:
        kept = self._jobs.get(job_id)
        if kept is None:
            return None
        if kept[0] <= time.monotonic():
            del self._jobs[job_id]
            return None
        return kept[1]
