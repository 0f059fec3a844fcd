"""`outrigger plugins list|run|job|reload` against a served executor.

`list`, `run` and `reload` go to the real app with the in-process test double as its sandbox
(`api_support.py`); `job` goes to a small app of the test's own that answers `POST /v1/jobs` and
`GET /v1/jobs/{id}` in their fixed shape (queued, then running, then done as the test says). The
commands run in-process through click's runner, in a worker thread (the SDK's blocking client
runs its own event loop), through `outrigger`'s own command group, so their errors are the
one-line messages and exit codes a user sees.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import pytest
from click.testing import CliRunner, Result
from fastapi import APIRouter, Body, Header, Response

from outrigger.auth import Principal, require_scope
from outrigger.cli import main
from outrigger.errors import NotFound
from outrigger.http import ServiceRoute, create_app
from outrigger.resilience import policies
from outrigger.testing import bearer, free_port, serving
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

    from fastapi import FastAPI

    from services.plugin_executor.settings import PluginSettings

TEXT = '{"text": "to be or not to be", "top": 1}'


async def plugins(
    url: str | None, token: str | None, *args: str, stdin: bytes | None = None
) -> Result:
    """`outrigger plugins ARGS` with $OUTRIGGER_PLUGIN_EXECUTOR_URL and $OUTRIGGER_TOKEN set (None:
    unset), with fresh resilience policies as in a process of its own."""
    env = {"OUTRIGGER_PLUGIN_EXECUTOR_URL": url, "OUTRIGGER_TOKEN": token}
    policies.clear()
    return await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["plugins", *args],
        input=stdin,
        env=env,
        catch_exceptions=False,
    )


def token_of(service: Executor, *scopes: str) -> str:
    return service.as_(*scopes)["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def settings(tmp_path: Path) -> PluginSettings:
    return plugin_settings(plugin_folder(tmp_path))


@pytest.fixture
async def executor(settings: PluginSettings) -> AsyncIterator[Executor]:
    async with served(settings) as service:
        yield service


async def run_as(service: Executor, *args: str, stdin: bytes | None = None) -> Result:
    return await plugins(service.url, token_of(service, RUN), *args, stdin=stdin)


def json_of(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    [line] = result.stdout.splitlines()
    return orjson.loads(line)


def one_line(text: str) -> str:
    found = text.strip().splitlines()
    assert len(found) == 1, text
    assert "Traceback" not in text
    return found[0]


async def test_list_prints_a_table_of_the_plugins_and_json_on_demand(executor: Executor) -> None:
    table = await run_as(executor, "list")
    as_json = json_of(await run_as(executor, "list", "--json"))

    assert table.exit_code == 0, table.stderr
    heading, *rows = table.stdout.splitlines()
    assert heading.split() == ["NAME", "VERSION", "DIGEST", "LIMITS"]
    assert [row.split()[0] for row in rows] == [
        "csv-to-json",
        "json-transform",
        "liar",
        "text-stats",
        "tree",
    ]
    stats = next(plugin for plugin in as_json["plugins"] if plugin["name"] == "text-stats")
    assert (
        f"text-stats      1.0.0    {stats['digest'][:12]}  "
        "cpu 2 s, memory 128 MiB, wall 5 s, output 256 KiB" in rows
    )
    assert stats["input_schema"]["required"] == ["text"]
    assert as_json["problems"] is None


async def test_reload_is_for_an_admin_and_shows_the_folders_not_loaded(
    executor: Executor,
) -> None:
    refused = await run_as(executor, "reload")
    assert refused.exit_code == 2
    assert "plugins:admin" in one_line(refused.stderr)

    reloaded = await plugins(executor.url, token_of(executor, RUN, ADMIN), "reload")
    assert reloaded.exit_code == 0, reloaded.stderr
    assert reloaded.stdout.splitlines()[-1].startswith("not loaded: broken: ")


async def test_run_prints_the_result_of_input_from_an_option_a_file_or_stdin(
    executor: Executor, tmp_path: Path
) -> None:
    (tmp_path / "input.json").write_text(TEXT)
    expected = {"word": "to", "count": 2}

    given = json_of(await run_as(executor, "run", "text-stats", "--input", TEXT))
    from_file = json_of(
        await run_as(executor, "run", "text-stats", "--input-file", str(tmp_path / "input.json"))
    )
    piped = json_of(await run_as(executor, "run", "text-stats", "-", stdin=TEXT.encode()))
    implied = json_of(await run_as(executor, "run", "text-stats", stdin=TEXT.encode()))
    full = json_of(await run_as(executor, "run", "text-stats", "--input", TEXT, "--full"))

    assert given["top_words"] == [expected]
    assert from_file == piped == implied == given
    assert (full["reason"], full["result"], full["plugin"]) == ("ok", given, "text-stats")
    assert set(full["usage"]) == {"cpu_s", "max_rss_kib", "wall_s"}


async def test_a_run_that_ends_without_a_result_exits_1_with_its_reason(
    executor: Executor,
) -> None:
    lied = await run_as(executor, "run", "liar", "--input", "{}")
    assert lied.exit_code == 1
    assert lied.stdout == ""
    assert one_line(lied.stderr).startswith("outrigger: liar ended with invalid_output: ")

    full = await run_as(executor, "run", "liar", "--input", "{}", "--full")
    assert full.exit_code == 1
    assert orjson.loads(full.stdout)["reason"] == "invalid_output"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "text-stats", "--input", "{text: 1}"], "Invalid value for --input: not JSON"),
        (["run", "text-stats", "--input", "[1]"], "the input must be a JSON object"),
        (["run", "text-stats", "--input", "{}", "-"], "give the input once"),
        (["run", "text-stats", "input.json"], "unexpected argument 'input.json'"),
        (["run", "text-stats", "--input", '{"text": 7}'], "text: 7 is not of type 'string'"),
        (["run", "nosuch", "--input", "{}"], "nosuch"),
        (["run"], "Missing argument 'NAME'"),
        (["job", "text-stats", "--input", "{}", "--timeout", "0"], "--timeout"),
    ],
)
async def test_mistakes_are_one_line_and_exit_2(
    executor: Executor, args: list[str], expected: str
) -> None:
    result = await run_as(executor, *args)
    assert result.exit_code == 2, result.output
    assert expected in one_line(result.stderr)
    assert executor.sandbox.runs == []


async def test_no_token_no_service_or_no_worker_is_exit_2_not_a_run_that_failed(
    executor: Executor,
) -> None:
    no_token = await plugins(executor.url, None, "list")
    assert no_token.exit_code == 2
    assert "OUTRIGGER_TOKEN" in one_line(no_token.stderr)

    nowhere = await plugins(f"http://127.0.0.1:{free_port()}", "t", "list")
    assert nowhere.exit_code == 2
    assert "cannot reach" in one_line(nowhere.stderr)

    executor.sandbox.available = False
    busy = await run_as(executor, "run", "text-stats", "--input", TEXT)
    assert busy.exit_code == 2
    assert "unavailable" in one_line(busy.stderr)


@dataclass
class ScriptedJobs:
    """A service answering the jobs API's fixed shape: each job is queued when submitted, then
    running, then done with `outcome` on the following looks (None: running for ever)."""

    outcome: dict[str, Any] | None
    submitted: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    looks: dict[str, int] = field(default_factory=dict)

    def app(self, settings: PluginSettings) -> FastAPI:
        router = APIRouter(prefix="/v1", route_class=ServiceRoute)
        router.add_api_route("/jobs", self._submit, methods=["POST"], status_code=202)
        router.add_api_route("/jobs/{id}", self._look, methods=["GET"])
        return create_app("plugin-executor", settings, routers=[router])

    async def _submit(
        self,
        body: Annotated[dict[str, Any], Body()],
        response: Response,
        _: Annotated[Principal, require_scope(RUN)],
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        self.submitted.append((body, idempotency_key))
        id = str(uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key or str(uuid.uuid4())))
        self.looks.setdefault(id, 0)
        response.headers["Location"] = f"/v1/jobs/{id}"
        return self._job(id, body["plugin"], "queued")

    async def _look(self, id: str, _: Annotated[Principal, require_scope(RUN)]) -> dict[str, Any]:
        if id not in self.looks:
            raise NotFound(f"no job {id}")
        self.looks[id] += 1
        if self.looks[id] == 1 or self.outcome is None:
            return self._job(
                id, "text-stats", "running", progress={"progress": 0.5, "message": None}
            )
        return self._job(id, "text-stats", "done", **self.outcome)

    def _job(self, id: str, plugin: str, state: str, **members: Any) -> dict[str, Any]:
        job = dict.fromkeys(["progress", "result", "reason", "detail", "usage"])
        job.update(id=id, plugin=plugin, state=state, **members)
        job.update(created_at="2026-12-06T23:00:00Z", updated_at="2026-12-06T23:00:01Z")
        return job


OK = {"result": {"words": 6}, "reason": "ok", "usage": {"cpu_s": 0, "max_rss_kib": 1, "wall_s": 0}}


async def jobs_served(
    jobs: ScriptedJobs, settings: PluginSettings, *args: str, stdin: bytes | None = None
) -> Result:
    """`outrigger plugins ARGS` against `jobs`, served for the one command."""
    async with serving(jobs.app(settings)) as url:
        token = bearer(settings, RUN)["Authorization"].removeprefix("Bearer ")
        return await plugins(url, token, *args, stdin=stdin)


async def test_job_queues_the_run_and_prints_its_id(settings: PluginSettings) -> None:
    jobs = ScriptedJobs(OK)
    queued = await jobs_served(
        jobs, settings, "job", "text-stats", "--input", TEXT, "--idempotency-key", "import-7"
    )
    assert queued.exit_code == 0, queued.stderr
    assert queued.stdout == f"{uuid.uuid5(uuid.NAMESPACE_URL, 'import-7')}\n"
    assert jobs.submitted == [({"plugin": "text-stats", "input": orjson.loads(TEXT)}, "import-7")]


async def test_job_wait_prints_the_job_once_done_and_exits_by_its_reason(
    settings: PluginSettings,
) -> None:
    done = await jobs_served(
        ScriptedJobs(OK), settings, "job", "text-stats", "-", "--wait", stdin=TEXT.encode()
    )
    job = json_of(done)
    assert (job["state"], job["reason"], job["result"]) == ("done", "ok", {"words": 6})

    failed = ScriptedJobs({"reason": "timeout", "detail": "ran past its 5 s"})
    timed_out = await jobs_served(failed, settings, "job", "text-stats", "--input", "{}", "--wait")
    assert timed_out.exit_code == 1
    assert orjson.loads(timed_out.stdout)["reason"] == "timeout"
    assert (
        one_line(timed_out.stderr) == "outrigger: text-stats ended with timeout: ran past its 5 s"
    )


async def test_job_wait_past_its_timeout_is_exit_2_saying_where_the_job_is(
    settings: PluginSettings,
) -> None:
    jobs = ScriptedJobs(None)
    late = await jobs_served(
        jobs, settings, "job", "text-stats", "--input", "{}", "--wait", "--timeout", "0.2"
    )
    assert late.exit_code == 2
    assert "is not done after 0.2 s (last seen running)" in one_line(late.stderr)
    assert late.stdout == ""


def test_the_commands_load_the_sdk_only_when_they_run() -> None:
    code = (
        "import sys; from outrigger import catalog; "
        "catalog.service('plugin-executor').commands(); "
        "print(','.join(m for m in ('outrigger.clients', 'httpx', 'pydantic', 'fastapi') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == ""
