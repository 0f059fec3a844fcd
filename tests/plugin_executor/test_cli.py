"""`outrigger plugins list|run|job|reload` against a served executor.

`list`, `run`, `reload` and `job` go to the real app with the in-process test double as its
sandbox (`api_support.py`), jobs through its in-memory bus and job store. The commands run
in-process through click's runner, in a worker thread (the SDK's blocking client runs its own
event loop), through `outrigger`'s own command group, so their errors are the one-line messages
and exit codes a user sees.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from click.testing import CliRunner, Result

from outrigger.cli import main
from outrigger.resilience import policies
from outrigger.testing import free_port
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


async def test_job_queues_the_run_and_prints_its_id(executor: Executor) -> None:
    args = ("job", "text-stats", "--input", TEXT, "--idempotency-key", "import-7")
    queued = await run_as(executor, *args)
    assert queued.exit_code == 0, queued.stderr
    [job_id] = queued.stdout.split()
    again = await run_as(executor, *args)
    assert again.stdout == queued.stdout  # the same key: the same job
    deadline = time.monotonic() + 10
    while (job := (await executor.http.get(f"/v1/jobs/{job_id}")).json())["state"] != "done":
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.05)
    assert (job["plugin"], job["reason"], job["result"]["words"]) == ("text-stats", "ok", 6)


async def test_job_wait_prints_the_job_once_done_and_exits_by_its_reason(
    executor: Executor,
) -> None:
    done = await run_as(executor, "job", "text-stats", "-", "--wait", stdin=TEXT.encode())
    job = json_of(done)
    assert (job["state"], job["reason"], job["result"]["words"]) == ("done", "ok", 6)

    lied = await run_as(executor, "job", "liar", "--input", "{}", "--wait")
    assert lied.exit_code == 1
    assert orjson.loads(lied.stdout)["reason"] == "invalid_output"
    assert one_line(lied.stderr).startswith("outrigger: liar ended with invalid_output: ")


async def test_job_wait_past_its_timeout_is_exit_2_saying_where_the_job_is(
    executor: Executor,
) -> None:
    executor.sandbox.available = False  # the job waits in the queue for a worker
    late = await run_as(
        executor, "job", "text-stats", "--input", TEXT, "--wait", "--timeout", "0.3"
    )
    assert late.exit_code == 2
    assert "is not done after 0.3 s (last seen queued)" in one_line(late.stderr)
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
