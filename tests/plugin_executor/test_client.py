"""`PluginsClient`, the SDK of the plugin executor.

Listing, reloading and running go to the real app, served by uvicorn with the in-process test
double as its sandbox (`api_support.py`). The job methods are held to the shape of `POST
/v1/jobs` and `GET /v1/jobs/{id}` by a scripted service behind an `httpx.MockTransport`, which
records what the client sent; the client's waits between polls are recorded, not slept.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest

from outrigger.clients import (
    Job,
    JobProgress,
    PluginLimits,
    PluginsClient,
    RunResult,
    RunUsage,
    SyncPluginsClient,
)
from outrigger.clients import plugins as sdk
from outrigger.errors import (
    Forbidden,
    InfrastructureError,
    InvalidInput,
    NotFound,
    Timeout,
    Unauthorized,
)
from outrigger.resilience import Policy, Retry
from outrigger.testing import unique
from tests.plugin_executor.api_support import (
    ADMIN,
    RUN,
    Executor,
    plugin_folder,
    plugin_settings,
    served,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from services.plugin_executor.settings import PluginSettings

NAMES = ["csv-to-json", "json-transform", "liar", "text-stats", "tree"]
JOB_ID = "5f0c1d9e-6a7b-4c3d-9e8f-0a1b2c3d4e5f"


def policy() -> Policy:
    return Policy(unique("plugin-executor"), retry=Retry(3, base_delay=0.001, max_delay=0.002))


@pytest.fixture
def settings(tmp_path: Path) -> PluginSettings:
    return plugin_settings(plugin_folder(tmp_path))


@pytest.fixture
async def executor(settings: PluginSettings) -> AsyncIterator[Executor]:
    async with served(settings) as service:
        yield service


def client_of(service: Executor, *scopes: str) -> PluginsClient:
    token = service.as_(*scopes)["Authorization"].removeprefix("Bearer ")
    return PluginsClient(service.url, token=token, policy=policy())


async def test_plugins_lists_each_plugin_typed_and_problems_only_for_an_admin(
    executor: Executor,
) -> None:
    async with client_of(executor, RUN) as runner, client_of(executor, RUN, ADMIN) as admin:
        listed = await runner.plugins()
        as_admin = await admin.plugins()

    assert [plugin.name for plugin in listed.plugins] == NAMES
    stats = listed.get("text-stats")
    assert stats is not None
    assert (stats.version, len(stats.digest)) == ("1.0.0", 64)
    assert stats.limits == PluginLimits(
        cpu_seconds=2.0, memory_mib=128, wall_seconds=5.0, output_kib=256
    )
    assert stats.input_schema["required"] == ["text"]
    assert stats.permissions == ()
    assert listed.get("nosuch") is None
    assert listed.problems is None, "problems are for plugins:admin"
    [problem] = as_admin.problems or ()
    assert problem.folder == "broken"
    assert "name 'Broken!' is not valid" in problem.detail


async def test_run_answers_how_the_run_ended_whatever_the_plugin_did(executor: Executor) -> None:
    async with client_of(executor, RUN) as client:
        ran = await client.run("text-stats", {"text": "to be or not to be", "top": 2})
        lied = await client.run("liar", {})

    assert isinstance(ran, RunResult)
    assert (ran.ok, ran.reason, ran.plugin, ran.version, ran.detail) == (
        True,
        "ok",
        "text-stats",
        "1.0.0",
        None,
    )
    assert ran.result is not None
    assert ran.result["top_words"] == [{"word": "to", "count": 2}, {"word": "be", "count": 2}]
    assert isinstance(ran.usage, RunUsage)
    assert ran.usage.wall_s >= 0
    assert (lied.ok, lied.reason, lied.result) == (False, "invalid_output", None)
    assert lied.detail is not None
    assert "count" in lied.detail


async def test_the_callers_mistakes_are_raised(executor: Executor) -> None:
    async with client_of(executor, RUN) as client:
        with pytest.raises(NotFound):
            await client.run("nosuch", {})
        with pytest.raises(InvalidInput) as refused:
            await client.run("text-stats", {"text": 7})
        with pytest.raises(Forbidden):
            await client.reload()
    assert "text" in refused.value.detail
    assert refused.value.errors

    async with PluginsClient(executor.url, token="not-a-token", policy=policy()) as stranger:
        with pytest.raises(Unauthorized):
            await stranger.plugins()


async def test_a_pool_that_cannot_take_the_run_is_an_infrastructure_error_with_retry_after(
    executor: Executor,
) -> None:
    executor.sandbox.available = False
    async with client_of(executor, RUN) as client:
        with pytest.raises(InfrastructureError) as unavailable:
            await client.run("text-stats", {"text": "x"})
    assert unavailable.value.headers["Retry-After"] == "1"
    assert executor.sandbox.runs == [], "a POST that reached the service is not retried"


async def test_reload_takes_a_new_plugin_and_reports_the_problems(
    executor: Executor, settings: PluginSettings
) -> None:
    echo = settings.plugin_dir / "echo"
    echo.mkdir()
    (echo / "plugin.toml").write_text(
        'name = "echo"\nversion = "0.1.0"\nentrypoint = "echo:echo"\n'
        'input_schema = { type = "object" }\noutput_schema = { type = "object" }\n'
    )
    (echo / "echo.py").write_text("def echo(payload):\n    return payload\n")
    async with client_of(executor, RUN, ADMIN) as admin:
        reloaded = await admin.reload()
        echoed = await admin.run("echo", {"said": "hello"})

    assert [plugin.name for plugin in reloaded.plugins] == sorted([*NAMES, "echo"])
    assert [problem.folder for problem in reloaded.problems or ()] == ["broken"]
    assert echoed.result == {"said": "hello"}


async def test_the_blocking_client_lists_and_runs(executor: Executor) -> None:
    token = executor.as_(RUN)["Authorization"].removeprefix("Bearer ")

    def script() -> tuple[list[str], RunResult]:
        with SyncPluginsClient(executor.url, token=token, policy=policy()) as client:
            names = [plugin.name for plugin in client.plugins().plugins]
            return names, client.run("csv-to-json", {"csv": "a,b\n1,2\n", "numbers": True})

    names, ran = await asyncio.to_thread(script)
    assert names == NAMES
    assert ran.result == {"columns": ["a", "b"], "rows": [{"a": 1, "b": 2}], "count": 1}


# The jobs API, scripted: the shape is `POST /v1/jobs` {plugin, input} (+ Idempotency-Key) -> 202
# and the job, `GET /v1/jobs/{id}` -> the job; 404 unknown, 503 while states are unavailable.


def job_body(state: str = "queued", **members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": JOB_ID,
        "plugin": "text-stats",
        "version": None,
        "state": state,
        "progress": None,
        "result": None,
        "reason": None,
        "detail": None,
        "usage": None,
        "created_at": "2026-12-06T23:00:00Z",
        "updated_at": "2026-12-06T23:00:01Z",
    }
    body.update(members)
    return body


DONE = job_body(
    "done",
    version="1.0.0",
    result={"words": 6},
    reason="ok",
    usage={"cpu_s": 0.01, "max_rss_kib": 9000, "wall_s": 0.02},
)
RUNNING = job_body("running", progress={"progress": 0.4, "message": "4 of 10"})


def problem(status: int, slug: str, detail: str, **headers: str) -> httpx.Response:
    body = {"type": f"https://outrigger.dev/problems/{slug}", "status": status, "detail": detail}
    return httpx.Response(
        status, json=body, headers={"Content-Type": "application/problem+json", **headers}
    )


def unavailable() -> httpx.Response:
    detail = "job states are unavailable: the cache is down"
    return problem(503, "unavailable", detail, **{"Retry-After": "1"})


def not_found() -> httpx.Response:
    return problem(404, "not-found", f"no job {JOB_ID}")


@dataclass
class ScriptedJobs:
    """Answers each request with the next scripted response, and records the requests."""

    answers: list[httpx.Response]
    seen: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.answers.pop(0)

    def client(self) -> PluginsClient:
        return PluginsClient(
            "http://executor.test",
            token="t",
            policy=policy(),
            transport=httpx.MockTransport(self),
        )


def answer(status: int, body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"Location": f"/v1/jobs/{body['id']}"})


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds `wait` sleeps between polls, recorded instead of slept."""
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(sdk, "sleep", record)
    return waited


async def test_submit_posts_the_job_with_its_idempotency_key_and_answers_it() -> None:
    jobs = ScriptedJobs([answer(202, job_body()), answer(200, job_body())])
    async with jobs.client() as client:
        queued = await client.submit("text-stats", {"text": "hi"}, idempotency_key="import-7")
        again = await client.submit("text-stats", {"text": "hi"}, idempotency_key="import-7")

    assert queued == again
    assert isinstance(queued, Job)
    assert (queued.id, queued.plugin, queued.state, queued.done) == (
        JOB_ID,
        "text-stats",
        "queued",
        False,
    )
    assert queued.created_at.isoformat() == "2026-12-06T23:00:00+00:00"
    assert queued.version is None
    first = jobs.seen[0]
    assert (first.method, first.url.path) == ("POST", "/v1/jobs")
    assert orjson.loads(first.content) == {"plugin": "text-stats", "input": {"text": "hi"}}
    assert [request.headers["Idempotency-Key"] for request in jobs.seen] == ["import-7"] * 2
    assert first.headers["Authorization"] == "Bearer t"


async def test_submit_makes_up_a_key_so_that_its_retries_queue_the_job_once() -> None:
    jobs = ScriptedJobs([unavailable(), answer(202, job_body()), answer(202, job_body())])
    async with jobs.client() as client:
        await client.submit("text-stats", {"text": "hi"})
        await client.submit("text-stats", {"text": "hi"})

    keys = [request.headers["Idempotency-Key"] for request in jobs.seen]
    assert len(keys) == 3
    assert keys[0] == keys[1], "a retry of one submit carries its key"
    assert keys[2] != keys[0], "another submit is another job"


async def test_submit_raises_what_the_service_refuses() -> None:
    refused = problem(422, "invalid-input", "Idempotency-Key reused with another request")
    jobs = ScriptedJobs([refused])
    async with jobs.client() as client:
        with pytest.raises(InvalidInput, match="reused"):
            await client.submit("text-stats", {"text": "other"}, idempotency_key="import-7")
    assert len(jobs.seen) == 1


async def test_job_reads_the_state_and_its_errors() -> None:
    jobs = ScriptedJobs([answer(200, RUNNING), not_found(), *(unavailable() for _ in range(3))])
    async with jobs.client() as client:
        running = await client.job(JOB_ID)
        with pytest.raises(NotFound):
            await client.job(JOB_ID)
        with pytest.raises(InfrastructureError, match="unavailable"):
            await client.job(JOB_ID)

    assert running.progress == JobProgress(0.4, "4 of 10")
    assert (running.state, running.reason, running.ok) == ("running", None, False)
    assert jobs.seen[0].url.path == f"/v1/jobs/{JOB_ID}"
    assert len(jobs.seen) == 5, "a GET is retried through 503s under the policy"


async def test_wait_polls_until_the_job_is_done(waits: list[float]) -> None:
    jobs = ScriptedJobs([answer(200, job_body()), answer(200, RUNNING), answer(200, DONE)])
    async with jobs.client() as client:
        done = await client.wait(JOB_ID, timeout=30, poll=0.2)

    assert (done.done, done.ok, done.result, done.version) == (True, True, {"words": 6}, "1.0.0")
    assert done.usage == RunUsage(cpu_s=0.01, max_rss_kib=9000, wall_s=0.02)
    assert waits == [0.2, 0.2]
    assert [request.method for request in jobs.seen] == ["GET"] * 3


async def test_wait_polls_through_a_state_that_is_unavailable_for_a_while(
    waits: list[float],
) -> None:
    jobs = ScriptedJobs(
        [answer(200, RUNNING), *(unavailable() for _ in range(3)), answer(200, DONE)]
    )
    async with jobs.client() as client:
        done = await client.wait(JOB_ID, timeout=30, poll=0.2)
    assert done.reason == "ok"
    assert len(waits) == 2


async def test_wait_gives_up_after_its_timeout_saying_the_last_state(
    waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(sdk.time, "monotonic", lambda: now[0])

    async def tick(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(sdk, "sleep", tick)
    jobs = ScriptedJobs([answer(200, RUNNING) for _ in range(4)])
    async with jobs.client() as client:
        with pytest.raises(Timeout) as late:
            await client.wait(JOB_ID, timeout=1.0, poll=0.4)

    assert waits == [0.4, 0.4, pytest.approx(0.2)]
    assert f"job {JOB_ID} (text-stats) is not done after 1 s (last seen running)" in str(late.value)
    assert late.value.extensions == {"job": JOB_ID, "state": "running"}


async def test_wait_raises_at_once_what_the_first_look_answers(waits: list[float]) -> None:
    jobs = ScriptedJobs([not_found()])
    async with jobs.client() as client:
        with pytest.raises(NotFound):
            await client.wait(JOB_ID)
        with pytest.raises(ValueError, match="positive"):
            await client.wait(JOB_ID, poll=0)
    assert waits == []


async def test_the_blocking_client_submits_and_waits(waits: list[float]) -> None:
    jobs = ScriptedJobs([answer(202, job_body()), answer(200, job_body()), answer(200, DONE)])

    def script() -> Job:
        with SyncPluginsClient(
            "http://executor.test", token="t", transport=httpx.MockTransport(jobs)
        ) as client:
            queued = client.submit("text-stats", {"text": "hi"}, idempotency_key="k")
            return client.wait(queued.id, timeout=5, poll=0.01)

    done = await asyncio.to_thread(script)
    assert done.reason == "ok"
    assert [request.method for request in jobs.seen] == ["POST", "GET", "GET"]
