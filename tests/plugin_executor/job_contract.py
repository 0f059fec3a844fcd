"""The `JobStore` contract (`services/plugin_executor/domain/port.py`), written once and run
against the memory store and the cache service's (`test_job_stores.py`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from outrigger.testing import ContractSuite
from services.plugin_executor.domain import Job, JobState, Outcome, Progress, Reason, Usage
from services.plugin_executor.domain.jobs import fingerprint, job_id

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from services.plugin_executor.domain import JobStore


def a_job(owner: str = "ada", key: str | None = None, plugin: str = "text-stats") -> Job:
    return Job.queued(job_id(owner, key), plugin, owner, fingerprint(plugin, {"text": "hi"}))


class JobStoreContract(ContractSuite["JobStore"]):
    async def test_a_created_job_is_read_back_whole(self, adapter: JobStore) -> None:
        job = a_job()
        assert await adapter.create(job) == job
        assert await adapter.get(job.id) == job

    async def test_an_unknown_job_is_none(self, adapter: JobStore) -> None:
        assert await adapter.get(a_job().id) is None

    async def test_create_keeps_the_first_job_of_an_id(self, adapter: JobStore) -> None:
        first = a_job(key="k-1")
        await adapter.create(first)
        second = Job.queued(first.id, "csv-to-json", "ada", "another request")
        assert await adapter.create(second) == first
        assert await adapter.get(first.id) == first

    async def test_of_two_concurrent_creates_one_wins_for_both(self, adapter: JobStore) -> None:
        one = a_job(key="race")
        other = Job.queued(one.id, "csv-to-json", "ada", "other")
        kept = await asyncio.gather(adapter.create(one), adapter.create(other))
        assert kept[0] == kept[1]
        assert kept[0] in (one, other)

    async def test_updates_keep_progress_and_the_outcome(self, adapter: JobStore) -> None:
        job = a_job()
        await adapter.create(job)
        running = job.running("1.0.0").progressed(Progress(0.4, "reading"))
        await adapter.update(running)
        assert await adapter.get(job.id) == running
        outcome = Outcome(Reason.OK, Usage(0.012, 14_000, 0.02), result={"words": 1, "n": [1.5]})
        done = running.done(outcome, "1.0.0")
        await adapter.update(done)
        kept = await adapter.get(job.id)
        assert kept == done
        assert kept is not None
        assert kept.state is JobState.DONE

    async def test_a_failed_outcome_keeps_its_detail_and_no_result(self, adapter: JobStore) -> None:
        job = a_job()
        failed = job.done(Outcome(Reason.ERROR, Usage(0.0, 0, 0.1), detail="ValueError: no"), None)
        await adapter.update(failed)
        assert await adapter.get(job.id) == failed

    async def test_discard_removes_a_job(self, adapter: JobStore) -> None:
        job = a_job()
        await adapter.create(job)
        await adapter.discard(job.id)
        assert await adapter.get(job.id) is None
        await adapter.discard(job.id)  # again: nothing to remove, no error

    async def test_a_job_is_forgotten_after_the_ttl_from_its_last_write(
        self, new_adapter: Callable[..., Awaitable[JobStore]]
    ) -> None:
        store = await new_adapter(ttl_seconds=1.0)
        job = a_job()
        await store.create(job)
        await asyncio.sleep(0.6)
        await store.update(job.running(None))  # restarts the TTL
        await asyncio.sleep(0.6)
        assert await store.get(job.id) is not None
        await asyncio.sleep(0.6)
        assert await store.get(job.id) is None

    async def test_a_reachable_store_passes_its_check(self, adapter: JobStore) -> None:
        await adapter.check()

    async def test_close_is_idempotent(self, new_adapter: Callable[..., Awaitable[Any]]) -> None:
        store = await new_adapter()
        await store.close()
        await store.close()
