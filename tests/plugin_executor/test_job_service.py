"""`JobService` on its own, with the embedded bus and store and the in-process test double: what
the HTTP and bus tests cannot isolate — a job redelivered after its result was kept is not run
again, and an outage of the store is logged once however many writes fail."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from outrigger.audit_trail import AuditTrail
from outrigger.auth import Principal, Scopes
from outrigger.bus import connect_bus
from outrigger.testing import unique
from services.plugin_executor.adapters.job_memory import MemoryJobStore
from services.plugin_executor.adapters.plugins import PluginFolder
from services.plugin_executor.domain import Job, JobStateUnavailable, job_id
from services.plugin_executor.usecases import JobRequest, JobService, PluginService
from tests.plugin_executor.api_support import plugin_settings
from tests.plugin_executor.fake_sandbox import InProcessSandbox
from tests.plugin_executor.job_support import Inbox, jobs_plugin_folder

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from outrigger.bus import MessageBus


class DownStore(MemoryJobStore):
    """A store whose every call fails, as the cache service's while it is down."""

    async def create(self, job: Job) -> Job:
        raise JobStateUnavailable("down")

    async def get(self, job_id: str) -> Job | None:
        raise JobStateUnavailable("down")

    async def update(self, job: Job) -> None:
        raise JobStateUnavailable("down")


@pytest.fixture
async def bus() -> AsyncIterator[MessageBus]:
    bus = connect_bus(f"memory://{unique('jobs')}", source="plugin-executor")
    await bus.start()
    yield bus
    await bus.close()


async def service(
    tmp_path: Path, bus: MessageBus, store: MemoryJobStore
) -> tuple[JobService, InProcessSandbox]:
    settings = plugin_settings(jobs_plugin_folder(tmp_path))
    sandbox = InProcessSandbox()
    plugins = PluginService(
        PluginFolder(settings.plugin_dir, settings.limit_policy()),
        sandbox,
        AuditTrail(bus, "plugin-executor"),
    )
    await plugins.load()
    return JobService(plugins, store, bus, progress_interval=0.0), sandbox


async def test_a_job_whose_result_is_kept_is_announced_again_not_run_again(
    tmp_path: Path, bus: MessageBus
) -> None:
    results = Inbox()
    await bus.subscribe(unique("results"), [("outrigger.jobs", "result.#")], results, dedupe=False)
    jobs, sandbox = await service(tmp_path, bus, MemoryJobStore(ttl_seconds=60))
    request = JobRequest(unique("job-"), "text-stats", {"text": "a b"}, "bus:tests")
    first = await jobs.execute(request)
    again = await jobs.execute(request)
    assert again == first
    assert len(sandbox.runs) == 1
    sent = await results.wait_about(request.id, 2)
    assert sent[0].event.id == sent[1].event.id, "the same event, for consumers to de-duplicate"


async def test_a_store_outage_is_logged_once_and_jobs_still_run(
    tmp_path: Path, bus: MessageBus, caplog: pytest.LogCaptureFixture
) -> None:
    jobs, sandbox = await service(tmp_path, bus, DownStore(ttl_seconds=60))
    with caplog.at_level(logging.WARNING, logger="outrigger.plugins.jobs"):
        for n in range(3):
            records: Any = {"records": [{"n": n}] * 50}
            done = await jobs.execute(JobRequest(unique("job-"), "json-transform", records, "t"))
            assert done.outcome is not None
    assert len(sandbox.runs) == 3
    warnings = [r for r in caplog.records if "cannot be kept" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_job_id_another_requester_used_is_refused_not_answered_with_its_result(
    tmp_path: Path, bus: MessageBus
) -> None:
    store = MemoryJobStore(ttl_seconds=60)
    jobs, sandbox = await service(tmp_path, bus, store)
    billing = JobRequest("order-1", "text-stats", {"text": "a b"}, "bus:billing")
    first = await jobs.execute(billing)
    shipping = JobRequest("order-1", "text-stats", {"text": "c d e"}, "bus:shipping")
    refused = await jobs.execute(shipping)
    assert refused.outcome is not None
    assert refused.outcome.reason == "invalid_input"
    assert "used before by another request" in (refused.outcome.detail or "")
    assert (refused.owner, refused.outcome.result) == ("bus:shipping", None)
    assert len(sandbox.runs) == 1
    assert await store.get("order-1") == first, "the first requester's job is untouched"


async def test_a_submit_cancelled_mid_publish_still_sends_its_job(
    tmp_path: Path, bus: MessageBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client went away while the broker was slow to confirm: the job it kept is sent all
    the same, so a retry of its key never finds a job that nothing will run."""
    queue = Inbox()
    await bus.subscribe(unique("runs"), [("outrigger.jobs", "run.#")], queue, dedupe=False)
    jobs, _ = await service(tmp_path, bus, MemoryJobStore(ttl_seconds=60))
    publish = bus.publish

    async def slow(*args: Any, **options: Any) -> None:
        await asyncio.sleep(0.2)
        await publish(*args, **options)

    monkeypatch.setattr(bus, "publish", slow)
    caller = Principal("alice", frozenset({Scopes.PLUGINS_RUN}))
    submitting = asyncio.create_task(jobs.submit(caller, "text-stats", {"text": "a"}, "k-1"))
    await asyncio.sleep(0.05)
    submitting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await submitting
    for _ in range(100):
        if queue.deliveries:
            break
        await asyncio.sleep(0.02)
    assert [sent.event.id for sent in queue.deliveries] == [job_id("alice", "k-1")]
