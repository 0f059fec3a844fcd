"""Jobs: a run asked for now and done later, by whichever replica takes it from the queue.

`submit` (HTTP) checks the input against the plugin's schema at once (a 422 as for a sync
run), keeps the job `queued` and sends it to `outrigger.jobs` (`run.<plugin>`, the message id
the job id). With an Idempotency-Key the job id is derived from the caller and the key, so a
retry finds the job the first attempt kept and gets it back; the same key with another request
is refused. The store is best effort here: while the cache is down the job still goes. A job
the broker did not take is removed from the store again, so nothing half-done stays.

`execute` (the consumer, for jobs from HTTP and from any backend alike) runs a job through
`PluginService.run` (counted and audited as every run is), keeping its state as it goes:
`running`, its progress (at most every `progress_interval` seconds to the store, each report
to the notifications channel `jobs.<id>`), then `done`; the result is published to
`outrigger.jobs` (`result.<plugin>.<reason>`) and to `jobs.<id>`. A job whose result is kept
already is not run again: its result is published again (with the same event ids, so
consumers that de-duplicate see it once). A job the plugin cannot take (unknown, or input its
schema refuses) ends `invalid_input`, published like any other.

Store writes never stop a job: a failed one is counted (`job_store_failures_total`) and
logged once per outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from outrigger.auth import Principal, Scopes
from outrigger.bus import CloudEvent
from outrigger.errors import InvalidInput, MessagingError, NotFound
from services.plugin_executor.domain import (
    IdempotencyKeyReused,
    Job,
    JobStateUnavailable,
    Outcome,
    Reason,
    Usage,
    fingerprint,
    job_id,
)
from services.plugin_executor.metrics import JOB_STORE_FAILURES, JOBS_SUBMITTED
from services.plugin_executor.usecases.job_documents import channel, derived, job_document

if TYPE_CHECKING:
    from outrigger.bus import MessageBus
    from services.plugin_executor.domain import JobStore, Progress
    from services.plugin_executor.usecases.service import PluginService

JOBS_EXCHANGE: Final = "outrigger.jobs"
NOTIFICATIONS_EXCHANGE: Final = "outrigger.notifications"
RUN_TYPE: Final = "dev.outrigger.plugins.job.run"
RESULT_TYPE: Final = "dev.outrigger.plugins.job.result"
OWNER_EXTENSION: Final = "jobowner"
NO_USAGE: Final = Usage(0.0, 0, 0.0)
log = logging.getLogger("outrigger.plugins.jobs")


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A job as the queue carries it: its id, the plugin, the input, who asked."""

    id: str
    plugin: str
    payload: Any
    owner: str


class JobService:
    def __init__(
        self,
        plugins: PluginService,
        store: JobStore,
        bus: MessageBus,
        *,
        exchange: str = JOBS_EXCHANGE,
        notifications: str = NOTIFICATIONS_EXCHANGE,
        progress_interval: float = 0.5,
    ) -> None:
        self.plugins = plugins
        self.store = store
        self.bus = bus
        self.exchange = exchange
        self.notifications = notifications
        self.progress_interval = progress_interval
        self._store_down = False

    async def submit(
        self, caller: Principal, plugin: str, payload: Any, idempotency_key: str | None = None
    ) -> Job:
        """Queues a run of `plugin` on `payload`. Raises `NotFound` (no such plugin),
        `InvalidInput` (the input breaks its schema), `IdempotencyKeyReused` (the key came
        with another request) or `MessagingError` (the broker did not take the job)."""
        self.plugins.check(plugin, payload)
        owner = caller.subject
        request = fingerprint(plugin, payload)
        job = Job.queued(job_id(owner, idempotency_key), plugin, owner, request)
        kept = await self._kept(job)
        if kept != job:  # the key was used before
            if kept.fingerprint != job.fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used with another request (another plugin or "
                    f"input) for job {kept.id}; use a new key for a new request"
                )
            return kept
        event = CloudEvent(
            id=job.id,
            source=self.bus.source,
            type=RUN_TYPE,
            data={"input": payload},
            subject=plugin,
            extensions={OWNER_EXTENSION: owner},
        )

        async def send() -> None:
            try:
                await self.bus.publish(self.exchange, f"run.{plugin}", event)
            except MessagingError:
                await self._best_effort("discard", self.store.discard(job.id))
                raise

        # nothing half-done: the job is sent, or (the broker did not take it) not kept either,
        # even when the request is cancelled meanwhile (its client gone): a kept job nothing
        # sends would answer every retry of its key with `queued`, for ever
        await asyncio.shield(send())
        JOBS_SUBMITTED.inc()
        return job

    async def get(self, caller: Principal, job: str) -> Job:
        """The job, if `caller` owns it (or holds `plugins:admin`). Raises `NotFound`, or
        `JobStateUnavailable` when the store cannot say."""
        found = await self.store.get(job)
        if found is None or (
            found.owner != caller.subject and not caller.has_scope(Scopes.PLUGINS_ADMIN)
        ):
            raise NotFound(f"no job {job} of yours is known (jobs are kept for a while only)")
        return found

    async def execute(self, request: JobRequest) -> Job:
        """Runs the job and publishes its result; answers the job, done. Raises
        `SandboxUnavailable` (no worker can take it) or `MessagingError` (its result could
        not be published): the job is to be tried again. Cancelled, it leaves no result."""
        requested = fingerprint(request.plugin, request.payload)
        known = await self._read(request.id)
        if known is not None and (known.owner, known.fingerprint) != (request.owner, requested):
            # CloudEvent ids are unique per source only: another requester's job keeps its id,
            # its state and its result; this one is answered (reply_to) and nothing else
            detail = (
                f"job id {request.id} was used before by another request; send the job "
                "again with a new CloudEvent id"
            )
            refused = Job.queued(request.id, request.plugin, request.owner, requested)
            return refused.done(Outcome(Reason.INVALID_INPUT, NO_USAGE, detail=detail), None)
        if known is not None and known.outcome is not None:
            await self.announce(known)
            return known
        job = known or Job.queued(request.id, request.plugin, request.owner, requested)
        caller = Principal(job.owner)
        loaded = self.plugins.loaded(request.plugin)
        relay = _ProgressRelay(self, job.running(loaded.version if loaded else None))
        try:
            await self._keep(relay.job)
            run = await self.plugins.run(caller, request.plugin, request.payload, relay.report)
        except (NotFound, InvalidInput) as exc:
            await relay.finish()
            outcome, version = Outcome(Reason.INVALID_INPUT, NO_USAGE, detail=exc.detail), None
        except BaseException:
            relay.abort()
            raise
        else:
            await relay.finish()
            outcome, version = run.outcome, run.plugin.version
        done = relay.job.done(outcome, version)
        await self._keep(done)
        await self.announce(done)
        return done

    async def requeued(self, request: JobRequest) -> None:
        """Marks the job queued again (best effort): its run was cut, or could not start."""
        known = await self._read(request.id)
        if known is not None and known.outcome is None:
            await self._keep(known.requeued())

    async def announce(self, job: Job) -> None:
        """Publishes a finished job's result to the jobs exchange and its channel."""
        outcome = job.outcome
        assert outcome is not None
        document = job_document(job)
        result = CloudEvent(
            id=derived(job.id, "result"),
            source=self.bus.source,
            type=RESULT_TYPE,
            data=document,
            subject=job.plugin,
        )
        notice = CloudEvent(
            id=derived(job.id, "notice"), source=self.bus.source, type="result", data=document
        )
        # both confirmations awaited together: one round trip, not two
        sent = await asyncio.gather(
            self.bus.publish(self.exchange, f"result.{job.plugin}.{outcome.reason}", result),
            self.bus.publish(self.notifications, channel(job.id), notice),
            return_exceptions=True,
        )
        for failed in (each for each in sent if isinstance(each, BaseException)):
            raise failed

    def result_event(self, job: Job) -> CloudEvent:
        """The reply a requester (`reply_to`) gets: the finished job."""
        return CloudEvent(
            id=derived(job.id, "reply"),
            source=self.bus.source,
            type=RESULT_TYPE,
            data=job_document(job),
            subject=job.plugin,
        )

    async def progressed(self, job: Job, progress: Progress, *, keep: bool) -> None:
        """Sends one progress report to the job's channel (and to the store if `keep`)."""
        data = {"progress": progress.progress, "message": progress.message}
        notice = CloudEvent.new(source=self.bus.source, type="progress", data=data)
        try:
            await self.bus.publish(self.notifications, channel(job.id), notice)
        except MessagingError as exc:
            log.info("progress of job %s not published: %s", job.id, exc.detail)
        if keep:
            await self._keep(job)

    async def _kept(self, job: Job) -> Job:
        """The job kept under `job.id` (this one if it is new, or while the store is down)."""
        try:
            kept = await self.store.create(job)
        except JobStateUnavailable as exc:
            self._failed("create", exc)
            return job
        self._recovered()
        return kept

    async def _read(self, job: str) -> Job | None:
        try:
            found = await self.store.get(job)
        except JobStateUnavailable as exc:
            self._failed("read", exc)
            return None
        self._recovered()
        return found

    async def _keep(self, job: Job) -> None:
        await self._best_effort("update", self.store.update(job))

    async def _best_effort(self, operation: str, writing: Any) -> None:
        try:
            await writing
        except JobStateUnavailable as exc:
            self._failed(operation, exc)
            return
        self._recovered()

    def _failed(self, operation: str, exc: JobStateUnavailable) -> None:
        JOB_STORE_FAILURES.labels(operation).inc()
        if not self._store_down:
            self._store_down = True
            log.warning(
                "jobs' state cannot be kept (jobs still run and publish their results): %s",
                exc.detail,
            )

    def _recovered(self) -> None:
        if self._store_down:
            self._store_down = False
            log.warning("jobs' state is kept again")


class _ProgressRelay:
    """Takes a run's progress reports (in the event loop, as the sandbox makes them) and
    passes them on in order from a task of its own; reports that come while one is being
    sent are folded into the latest."""

    def __init__(self, jobs: JobService, job: Job) -> None:
        self.jobs = jobs
        self.job = job
        self._latest: Progress | None = None
        self._wake = asyncio.Event()
        self._open = True
        self._kept_at = 0.0
        self._task = asyncio.create_task(self._relay(), name=f"progress of job {job.id}")

    def report(self, progress: Progress) -> None:
        self._latest = progress
        self._wake.set()

    async def finish(self) -> None:
        """Sends what is left, then ends."""
        self._open = False
        self._wake.set()
        await self._task

    def abort(self) -> None:
        self._task.cancel()

    async def _relay(self) -> None:
        while self._open or self._latest is not None:
            await self._wake.wait()
            self._wake.clear()
            progress, self._latest = self._latest, None
            if progress is None:
                continue
            self.job = self.job.progressed(progress)
            now = time.monotonic()
            keep = now - self._kept_at >= self.jobs.progress_interval
            if keep:
                self._kept_at = now
            await self.jobs.progressed(self.job, progress, keep=keep)
