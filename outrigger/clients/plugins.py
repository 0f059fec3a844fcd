"""`PluginsClient`: list, reload and run the plugin executor's plugins, now or as jobs.

    async with PluginsClient("http://127.0.0.1:8005", token=token) as executor:
        ran = await executor.run("text-stats", {"text": "to be or not to be", "top": 2})
        if ran.ok:
            print(ran.result["top_words"])
        else:
            print(ran.reason, ran.detail)                 # timeout, memory_limit, error, ...

        job = await executor.submit("csv-to-json", {"csv": csv_text}, idempotency_key="import-7")
        done = await executor.wait(job.id, timeout=120)   # polls GET /v1/jobs/{id}

A run's answer is a `RunResult` whatever the plugin did: `reason` says how it ended, and only
the caller's mistakes are raised (`NotFound` for an unknown plugin, `InvalidInput` for input
its schema refuses, naming each path). A full or stopping worker pool is an
`InfrastructureError` with the service's `Retry-After` in its headers.

`wait` polls; the push alternative is the notifications hub: every job's progress and result are
published on the channel `jobs.<job id>` (events `progress` and `result`), which
`NotificationsClient.subscribe(f"jobs.{job.id}")` follows with a token granted that channel.
Every method returns the dataclasses of `outrigger.clients.plugins_models`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from outrigger.clients.base import ServiceClient
from outrigger.clients.plugins_models import Job, PluginList, RunResult
from outrigger.errors import InfrastructureError, Timeout

if TYPE_CHECKING:
    from collections.abc import Mapping

JOBS_PATH = "/v1/jobs"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# the wait between two polls of `wait`, injectable for tests
sleep = asyncio.sleep


class PluginsClient(ServiceClient):
    """The plugin executor's HTTP API (see the module docstring); every method raises the
    `outrigger.errors` class of the problem the service answered (`NotFound`, `InvalidInput`,
    `Forbidden`, ...)."""

    service = "plugin-executor"

    async def plugins(self) -> PluginList:
        """The loaded plugins with their schemas and limits (scope `plugins:run`); with
        `plugins:admin`, also the folders that could not be loaded and why."""
        return self._model(PluginList, await self._request("GET", "/v1/plugins"))

    async def reload(self) -> PluginList:
        """Rescans the service's plugin folder without a restart (scope `plugins:admin`) and
        answers the new list, its problems included. Runs under way end with the plugin they
        started with."""
        response = await self._request("POST", "/v1/plugins:reload", idempotent=True)
        return self._model(PluginList, response)

    async def run(self, name: str, input: Mapping[str, Any]) -> RunResult:
        """Runs plugin `name` on `input` (a JSON object its input schema accepts) in the sandbox
        and waits for how it ended (scope `plugins:run`). Not retried once the request reached
        the service: use `submit` with an idempotency key for a run that must happen once."""
        path = f"/v1/plugins/{quote(name, safe='')}/run"
        return self._model(RunResult, await self._request("POST", path, json=dict(input)))

    async def submit(
        self, plugin: str, input: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Job:
        """Queues a run of `plugin` on `input` and answers the job, `queued` (scope
        `plugins:run`); the input is checked against the plugin's schema now (`InvalidInput`).
        Submitting again with the same `idempotency_key` (at most 255 printable characters)
        answers the same job rather than a new one, and the same key with another plugin or
        input is `InvalidInput`. Without a key the client makes one up, so that its own retries
        (an answer lost on the way back) never queue the run twice; to retry after `submit`
        has raised, pass a key of your own."""
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        response = await self._request(
            "POST",
            JOBS_PATH,
            json={"plugin": plugin, "input": dict(input)},
            headers={IDEMPOTENCY_HEADER: key},
            expect=(200, 202),
            idempotent=True,
        )
        return self._model(Job, response)

    async def job(self, id: str) -> Job:
        """The job now (scope `plugins:run`, the token that submitted it, or `plugins:admin`):
        `NotFound` for an unknown one, or one whose state has expired; an
        `InfrastructureError` (503) while the service cannot read job states, rather than a
        wrong answer."""
        return self._model(Job, await self._request("GET", f"{JOBS_PATH}/{quote(id, safe='')}"))

    async def wait(
        self,
        id: str,
        *,
        timeout: float = 60.0,  # noqa: ASYNC109 (the job's time to finish: the error says its state)
        poll: float = 0.5,
    ) -> Job:
        """Polls the job every `poll` seconds until it is `done` and answers it; `Timeout` if it
        is not done within `timeout` seconds. The first look raises what the service answers
        (`NotFound`, `Forbidden`, ...); after it, a service that cannot tell for now (503,
        unreachable) is asked again until `timeout`. For pushes instead of polls, follow the
        channel `jobs.<id>` of the notifications hub (see the module docstring)."""
        if timeout <= 0 or poll <= 0:
            raise ValueError("timeout and poll must be positive")
        deadline = time.monotonic() + timeout
        job = await self.job(id)
        unknown: InfrastructureError | None = None
        while not job.done:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _not_done(id, timeout, job, unknown)
            await sleep(min(poll, left))
            try:
                job = await self.job(id)
            except InfrastructureError as exc:
                unknown = exc
            else:
                unknown = None
        return job


def _not_done(id: str, timeout: float, job: Job, unknown: InfrastructureError | None) -> Timeout:
    where = f"last seen {job.state}"
    if unknown is not None:
        where += f"; its state is unavailable now: {unknown.detail}"
    error = Timeout(f"job {id} ({job.plugin}) is not done after {timeout:g} s ({where})")
    error.extensions.update(job=id, state=job.state)
    return error
