"""`outrigger events append|read|tail` against the event store served for real.

The commands run in-process through click's runner (in a worker thread, as they run their own
event loop) against the app served by uvicorn; what a user sees when nothing answers or the
arguments are wrong is checked on the real `outrigger` process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
from click.testing import CliRunner, Result

from outrigger.cli import main
from outrigger.testing import bearer, free_port, serving
from services.event_store.app import build_app
from tests.databases import copy_sqlite
from tests.event_store.api_support import settings_for
from tests.event_store.suite import new_category, new_stream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

OUTRIGGER = str(Path(sys.executable).with_name("outrigger"))


async def events_command(url: str, token: str, *args: str, stdin: str | None = None) -> Result:
    """`outrigger events ARGS --url URL` with $OUTRIGGER_TOKEN set, run in a worker thread."""
    argv = ["events", *args, "--url", url]
    env = {"OUTRIGGER_TOKEN": token}
    return await asyncio.to_thread(
        CliRunner().invoke, main, argv, input=stdin, env=env, catch_exceptions=False
    )


@dataclass
class Served:
    url: str
    token: str
    http: httpx.AsyncClient

    async def events(self, *args: str, stdin: str | None = None) -> Result:
        return await events_command(self.url, self.token, *args, stdin=stdin)


@pytest.fixture
async def served(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Served]:
    settings = settings_for(copy_sqlite(sqlite_template, tmp_path), tmp_path)
    token = bearer(settings)["Authorization"].removeprefix("Bearer ")
    async with (
        serving(build_app(settings)) as url,
        httpx.AsyncClient(base_url=url, headers=bearer(settings)) as http,
    ):
        yield Served(url, token, http)


def lines(result: Result) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def one_line(text: str) -> str:
    found = text.strip().splitlines()
    assert len(found) == 1, text
    assert "Traceback" not in text
    return found[0]


async def test_append_takes_the_data_as_an_argument_or_from_stdin_and_says_where_it_landed(
    served: Served,
) -> None:
    stream = new_stream()
    first = await served.events(
        "append", stream, "--type", "Placed", "--data", '{"total": 42}',
        "--metadata", '{"by": "cli"}', "--expected-version", "no_stream",
    )  # fmt: skip
    assert first.exit_code == 0, first.stderr
    assert lines(first) == [
        {"stream_id": stream, "first_version": 0, "last_version": 0, "replayed": False}
    ]
    event_id = str(uuid.uuid4())
    piped = await served.events(
        "append", stream, "--type", "Paid", "--data", "-", "--id", event_id,
        "--expected-version", "0", stdin='{"amount": [4, 2]}\n',
    )  # fmt: skip
    assert piped.exit_code == 0, piped.stderr
    assert lines(piped)[0]["last_version"] == 1
    again = await served.events(
        "append", stream, "--type", "Paid", "--data", '{"amount": [4, 2]}', "--id", event_id
    )
    assert lines(again)[0]["replayed"] is True

    stored = (await served.http.get(f"/v1/streams/{stream}/events")).json()["events"]
    assert [(e["type"], e["data"], e["metadata"]) for e in stored] == [
        ("Placed", {"total": 42}, {"by": "cli"}),
        ("Paid", {"amount": [4, 2]}, {}),
    ]
    assert stored[1]["id"] == event_id


async def test_read_prints_the_events_one_json_object_per_line_across_pages(
    served: Served,
) -> None:
    stream = new_stream()
    body = {"events": [{"type": "Counted", "data": {"n": n}} for n in range(5)]}
    assert (await served.http.post(f"/v1/streams/{stream}/events", json=body)).status_code == 201

    every = await served.events("read", stream)
    assert every.exit_code == 0, every.stderr
    assert [(e["version"], e["data"]) for e in lines(every)] == [(n, {"n": n}) for n in range(5)]
    newest = await served.events("read", stream, "--backward", "--limit", "2")
    assert [e["version"] for e in lines(newest)] == [4, 3]
    middle = await served.events("read", stream, "--from-version", "1", "--limit", "3")
    assert [e["version"] for e in lines(middle)] == [1, 2, 3]


async def test_tail_prints_past_then_new_events_and_stops_after_count(served: Served) -> None:
    category = new_category()
    before = {"events": [{"type": "Placed", "data": {"n": n}} for n in range(2)]}
    await served.http.post(f"/v1/streams/{category}-1/events", json=before)
    await served.http.post(f"/v1/streams/{new_stream()}/events", json=before)  # not followed

    tailing = asyncio.create_task(served.events("tail", "--category", category, "--count", "3"))
    later = {"events": [{"type": "Shipped", "data": {"n": 2}}]}
    await served.http.post(f"/v1/streams/{category}-2/events", json=later)
    result = await asyncio.wait_for(tailing, 20)

    assert result.exit_code == 0, result.stderr
    printed = lines(result)
    assert [(e["stream_id"], e["type"]) for e in printed] == [
        (f"{category}-1", "Placed"),
        (f"{category}-1", "Placed"),
        (f"{category}-2", "Shipped"),
    ]
    positions = [event["global_position"] for event in printed]
    assert positions == sorted(positions)
    resumed = await served.events("tail", "--after", str(positions[1]), "--count", "1")
    assert lines(resumed)[0]["global_position"] > positions[1]


async def test_input_the_service_refuses_is_one_line_on_stderr_and_exit_code_2(
    served: Served,
) -> None:
    bad_stream = await served.events("append", "no spaces", "--type", "T", "--data", "{}")
    assert bad_stream.exit_code == 2
    assert "stream id must be" in one_line(bad_stream.stderr)
    bad_version = await served.events(
        "append", new_stream(), "--type", "T", "--data", "{}", "--expected-version", "maybe"
    )
    assert bad_version.exit_code == 2
    assert "expected_version" in one_line(bad_version.stderr)
    assert bad_stream.stdout == bad_version.stdout == ""


async def test_a_conflict_or_a_missing_stream_is_one_line_and_exit_code_1(served: Served) -> None:
    stream = new_stream()
    await served.events("append", stream, "--type", "T", "--data", "1")
    conflict = await served.events(
        "append", stream, "--type", "T", "--data", "2", "--expected-version", "no_stream"
    )
    assert conflict.exit_code == 1
    assert f'stream "{stream}" is at 0' in one_line(conflict.stderr)
    missing = await served.events("read", new_stream())
    assert missing.exit_code == 1
    assert one_line(missing.stderr).startswith("outrigger: ")


def outrigger(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OUTRIGGER_")}
    return subprocess.run(
        [OUTRIGGER, *args],
        env=clean,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_arguments_are_one_line_on_stderr_and_exit_code_2() -> None:
    not_json = outrigger("events", "append", "order-7", "--type", "T", "--data", "{oops")
    assert not_json.returncode == 2
    assert "--data" in one_line(not_json.stderr)
    assert "not JSON" in not_json.stderr

    runner = CliRunner()
    bad_stdin = runner.invoke(
        main, ["events", "append", "order-7", "--type", "T", "--data", "-"], input="{oops"
    )
    assert bad_stdin.exit_code == 2
    assert "not JSON" in one_line(bad_stdin.stderr)
    no_type = runner.invoke(main, ["events", "append", "order-7", "--data", "{}"])
    assert no_type.exit_code == 2
    assert "--type" in one_line(no_type.stderr)
    no_count = runner.invoke(main, ["events", "tail", "--count", "0"])
    assert no_count.exit_code == 2
    assert "--count" in one_line(no_count.stderr)


async def test_a_service_that_does_not_answer_is_named_in_one_line_with_exit_code_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    read = await events_command(url, "token", "read", "order-7")
    assert read.exit_code == 1
    assert f"cannot reach {url}" in one_line(read.stderr)
    tail = await asyncio.to_thread(outrigger, "events", "tail", "--url", url, "--token", "t")
    assert tail.returncode == 1, tail.stderr
    assert f"cannot reach {url}" in one_line(tail.stderr)


def test_without_a_token_the_command_says_how_to_give_one_with_exit_code_2() -> None:
    argv = ["events", "read", "order-7", "--url", "http://127.0.0.1:9"]
    missing = CliRunner().invoke(main, argv, env={"OUTRIGGER_TOKEN": None})
    assert missing.exit_code == 2
    line = one_line(missing.stderr)
    assert "OUTRIGGER_TOKEN" in line
    assert "--token" in line
    assert missing.stdout == ""


async def test_a_token_the_service_refuses_is_its_401_detail_in_one_line(
    served: Served, tmp_path: Path
) -> None:
    other = settings_for("sqlite+aiosqlite://", tmp_path, jwt_secret="another-secret-" * 3)
    forged = bearer(other)["Authorization"].removeprefix("Bearer ")
    refused = await events_command(served.url, forged, "read", new_stream())
    assert refused.exit_code == 1
    assert one_line(refused.stderr) == "outrigger: bad token signature"
    not_a_jwt = await events_command(served.url, "not-a-jwt", "tail")
    assert not_a_jwt.exit_code == 1
    assert "malformed token" in one_line(not_a_jwt.stderr)


async def test_the_url_comes_from_outrigger_event_store_url_unless_given(served: Served) -> None:
    stream = new_stream()
    env = {"OUTRIGGER_TOKEN": served.token, "OUTRIGGER_EVENT_STORE_URL": served.url}
    argv = ["events", "append", stream, "--type", "T", "--data", "{}"]
    result = await asyncio.to_thread(CliRunner().invoke, main, argv, env=env)
    assert result.exit_code == 0, result.stderr
    assert lines(result)[0]["stream_id"] == stream
    down = f"http://127.0.0.1:{free_port()}"
    overridden = await asyncio.to_thread(
        CliRunner().invoke, main, ["events", "read", stream, "--url", down], env=env
    )
    assert f"cannot reach {down}" in one_line(overridden.stderr)


async def test_ctrl_c_ends_tail_quietly_with_exit_code_130(served: Served) -> None:
    category = new_category()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OUTRIGGER_")},
        "OUTRIGGER_TOKEN": served.token,
        "OUTRIGGER_EVENT_STORE_URL": served.url,
    }
    tail = await asyncio.create_subprocess_exec(
        OUTRIGGER, "events", "tail", "--category", category,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        body = {"events": [{"type": "Placed", "data": {"n": 1}}]}
        await served.http.post(f"/v1/streams/{category}-1/events", json=body)
        assert tail.stdout is not None
        first = await asyncio.wait_for(tail.stdout.readline(), 30)
        assert orjson.loads(first)["data"] == {"n": 1}
        tail.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(tail.communicate(), 30)
    finally:
        if tail.returncode is None:
            tail.kill()
            await tail.wait()
    assert tail.returncode == 130
    assert stderr == b""
