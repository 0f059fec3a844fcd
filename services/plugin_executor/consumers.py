"""Jobs from the bus: queue `plugin-executor.jobs`, bound to `outrigger.jobs` with `run.*`, shared
by the replicas as competing consumers.

A message is a job whether the HTTP API or any backend sent it: the plugin is the routing key's
second word, the CloudEvent `data` is `{"input": {...}}` and its `id` the job id. A job sent
by a backend is owned by `bus:<its CloudEvent source>`. A message with `reply_to` gets the
finished job there, with its `correlation_id` (`MessageBus.reply`).

How a delivery ends:

- the job ran, whatever the plugin did (an error, a limit, a result its schema refuses), or
  could not run (an unknown plugin, input its schema refuses: `invalid_input`): its result is
  published, then the message is acknowledged. Never retried.
- no sandboxed worker could take it, or its result could not be published: retried with backoff
  (`MAX_ATTEMPTS`, then `plugin-executor.jobs.dlq`). A result kept already is published again
  (and replied again), the job not run twice: a job sent twice is answered twice.
- the service stops: no new job is taken; running ones have the shutdown grace
  (`OUTRIGGER_SHUTDOWN_GRACE_SECONDS`) to finish, then their runs are cut and the jobs go back
  to the queue (retried, for another replica), never reported as results.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from outrigger.bus import Ack, Retry
from outrigger.errors import MessagingError
from services.plugin_executor.domain import SandboxUnavailable, bus_owner
from services.plugin_executor.metrics import JOBS_IN_FLIGHT, JOBS_REQUEUED
from services.plugin_executor.usecases import JobRequest
from services.plugin_executor.usecases.jobs import JOBS_EXCHANGE, OWNER_EXTENSION

if TYPE_CHECKING:
    from outrigger.bus import Delivery, MessageBus, Outcome, Subscription
    from services.plugin_executor.domain import Job
    from services.plugin_executor.usecases import JobService

QUEUE: Final = "plugin-executor.jobs"
RUN_PREFIX: Final = "run."
MAX_ATTEMPTS: Final = 10
log = logging.getLogger("outrigger.plugins.jobs")


class JobRunner:
    """The handler: runs one job per delivery; `stop` ends the subscription gracefully."""

    def __init__(self, jobs: JobService, bus: MessageBus) -> None:
        self.jobs = jobs
        self.bus = bus
        self.subscription: Subscription | None = None
        self._stopping = False
        self._running: set[asyncio.Task[Job]] = set()

    async def __call__(self, delivery: Delivery) -> Outcome:
        if self._stopping:
            return Retry("the service is stopping; another replica takes the job")
        request = self.request_of(delivery)
        JOBS_IN_FLIGHT.inc()
        run = asyncio.create_task(self.jobs.execute(request), name=f"job {request.id}")
        self._running.add(run)
        try:
            job = await run
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not run.cancelled() or (current is not None and current.cancelling()):
                raise  # the handler itself is cancelled: the broker delivers the job again
            return await self._requeue(request, "shutdown", "the service stopped during its run")
        except SandboxUnavailable as exc:
            return await self._requeue(request, "sandbox", f"sandbox unavailable: {exc.detail}")
        except MessagingError as exc:
            JOBS_REQUEUED.labels("publish").inc()
            return Retry(f"its result could not be published: {exc.detail}")
        finally:
            self._running.discard(run)
            JOBS_IN_FLIGHT.dec()
        if delivery.reply_to:
            try:
                await self.bus.reply(delivery, self.jobs.result_event(job))
            except MessagingError as exc:
                JOBS_REQUEUED.labels("publish").inc()
                return Retry(f"the reply to {delivery.reply_to!r} could not be sent: {exc.detail}")
        return Ack()

    def request_of(self, delivery: Delivery) -> JobRequest:
        """The job a delivery carries (the use case checks the plugin and its input)."""
        event = delivery.event
        data = event.data
        payload = data.get("input") if isinstance(data, dict) else None
        owner = event.extensions.get(OWNER_EXTENSION) if event.source == self.bus.source else None
        return JobRequest(
            id=event.id,
            plugin=delivery.routing_key.removeprefix(RUN_PREFIX),
            payload=payload,
            owner=owner or bus_owner(event.source),
        )

    async def stop(self, grace_seconds: float) -> None:
        """Takes no new job, lets running ones finish for `grace_seconds`, then cuts them
        (their jobs go back to the queue) and ends the subscription."""
        self._stopping = True
        subscription, self.subscription = self.subscription, None
        if subscription is None:
            return
        ending = asyncio.create_task(subscription.cancel(), name="jobs subscription")
        await asyncio.wait({ending}, timeout=grace_seconds)
        if not ending.done():
            log.warning(
                "%d jobs still running after the shutdown grace of %gs: cut, back to the queue",
                len(self._running),
                grace_seconds,
            )
            for run in list(self._running):
                run.cancel()
        await ending

    async def _requeue(self, request: JobRequest, why: str, reason: str) -> Outcome:
        JOBS_REQUEUED.labels(why).inc()
        await self.jobs.requeued(request)
        return Retry(reason)


async def subscribe_jobs(
    bus: MessageBus,
    runner: JobRunner,
    *,
    queue: str = QUEUE,
    exchange: str = JOBS_EXCHANGE,
    prefetch: int = 4,
) -> Subscription:
    """Consumes `queue` (bound to `exchange`, `run.*`) with `runner`."""
    subscription = await bus.subscribe(
        queue,
        [(exchange, f"{RUN_PREFIX}*")],
        runner,
        max_attempts=MAX_ATTEMPTS,
        retry_delay_seconds=1.0,
        max_retry_delay_seconds=60.0,
        prefetch=prefetch,
        # the store de-duplicates, across replicas: a job sent again once done is not run again
        # but answered again (its reply_to gets the result, which a dropped duplicate would not)
        dedupe=False,
    )
    runner.subscription = subscription
    return subscription
