"""`outrigger cache get|put|delete|invalidate|lock` against the cache served for real.

The commands run in-process through click's runner, in a worker thread (the SDK's blocking
client runs its own event loop), against the app (in-memory store) served by uvicorn.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from click.testing import CliRunner, Result

from outrigger.cli import main
from outrigger.testing import bearer, free_port, serving, unique
from services.cache.app import build_app
from tests.cache.http_support import ALL, SECRET, cache_settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


async def cache_command(
    url: str | None, token: str | None, *args: str, stdin: bytes | None = None
) -> Result:
    """`outrigger cache ARGS` with $OUTRIGGER_CACHE_URL and $OUTRIGGER_TOKEN set (None: unset)."""
    env = {"OUTRIGGER_CACHE_URL": url, "OUTRIGGER_TOKEN": token}
    return await asyncio.to_thread(
        CliRunner().invoke, main, ["cache", *args], input=stdin, env=env, catch_exceptions=False
    )


@dataclass
class Served:
    url: str
    token: str
    ns: str

    async def cache(self, *args: str, stdin: bytes | None = None) -> Result:
        return await cache_command(self.url, self.token, *args, stdin=stdin)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    settings = cache_settings("memory://")
    token = bearer(settings, *ALL)["Authorization"].removeprefix("Bearer ")
    async with serving(build_app(settings)) as url:
        yield Served(url, token, unique("ns"))


def printed(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return orjson.loads(result.stdout)


def one_line(text: str) -> str:
    found = text.strip().splitlines()
    assert len(found) == 1, text
    assert "Traceback" not in text
    return found[0]


async def test_put_stores_an_argument_and_get_prints_it_byte_for_byte(served: Served) -> None:
    put = await served.cache(
        "put", served.ns, "user/42", '{"name": "Ada"}', "--ttl", "60",
        "--tag", "stream:user-42", "--tag", "users", "--content-type", "application/json",
    )  # fmt: skip
    stored = printed(put)
    assert (stored["key"], stored["size"], stored["ttl_ms"]) == ("user/42", 15, 60_000)
    assert stored["content_type"] == "application/json"
    assert stored["tags"] == ["stream:user-42", "users"]
    assert stored["created"].endswith("Z")

    got = await served.cache("get", served.ns, "user/42")
    assert (got.exit_code, got.stdout_bytes) == (0, b'{"name": "Ada"}')
    entry = printed(await served.cache("get", served.ns, "user/42", "--json"))
    assert entry == {
        "key": "user/42",
        "value": '{"name": "Ada"}',
        "encoding": "utf-8",
        "content_type": "application/json",
        "version": stored["version"],
        "max_age": entry["max_age"],
        "tags": ["stream:user-42", "users"],
    }
    assert 59 <= entry["max_age"] <= 60


async def test_put_reads_stdin_without_a_value_or_with_a_dash(served: Served) -> None:
    binary = bytes(range(256))
    stored = printed(await served.cache("put", served.ns, "blob", stdin=binary))
    assert (stored["size"], stored["content_type"]) == (256, "application/octet-stream")
    got = await served.cache("get", served.ns, "blob")
    assert got.stdout_bytes == binary
    entry = printed(await served.cache("get", served.ns, "blob", "--json"))
    assert (entry["encoding"], base64.b64decode(entry["value"])) == ("base64", binary)

    dashed = printed(await served.cache("put", served.ns, "text", "-", stdin=b"line\n"))
    assert dashed["size"] == 5
    assert (await served.cache("get", served.ns, "text")).stdout_bytes == b"line\n"


async def test_a_miss_and_a_delete_of_nothing_are_one_line_and_exit_code_1(
    served: Served,
) -> None:
    printed(await served.cache("put", served.ns, "k", "v"))
    deleted = await served.cache("delete", served.ns, "k")
    assert (deleted.exit_code, deleted.stdout, deleted.stderr) == (0, "", "")

    missing = await served.cache("get", served.ns, "k")
    assert missing.exit_code == 1
    assert missing.stdout == ""
    line = one_line(missing.stderr)
    assert line.startswith(f"outrigger: no fresh entry 'k' in namespace '{served.ns}'")
    again = await served.cache("delete", served.ns, "k")
    assert again.exit_code == 1
    assert "nothing was deleted" in one_line(again.stderr)


async def test_invalidate_by_tags_or_by_prefix_says_how_many_it_removed(served: Served) -> None:
    for key, tag in (("a/1", "red"), ("a/2", "blue"), ("b/1", "green")):
        printed(await served.cache("put", served.ns, key, "v", "--tag", tag))
    by_tags = await served.cache("invalidate", served.ns, "--tag", "red", "--tag", "blue")
    assert printed(by_tags) == {"removed": 2}
    everything = await served.cache("invalidate", served.ns, "--prefix", "")
    assert printed(everything) == {"removed": 1}

    for wrong in (["--tag", "red", "--prefix", "a/"], []):
        refused = await served.cache("invalidate", served.ns, *wrong)
        assert refused.exit_code == 2
        assert "--tag" in one_line(refused.stderr)


async def test_lock_acquires_renews_and_releases_with_the_token_it_printed(
    served: Served,
) -> None:
    resource = unique("job")
    held = printed(await served.cache("lock", resource, "--ttl", "30"))
    assert (held["resource"], held["ttl_ms"]) == (resource, 30_000)
    assert held["fence"] >= 1
    assert held["token"]

    busy = await served.cache("lock", resource)
    assert busy.exit_code == 1
    assert busy.stdout == ""
    assert resource in one_line(busy.stderr)

    renewed = printed(await served.cache("lock", resource, "--renew", held["token"], "--ttl", "5"))
    assert renewed == {**held, "ttl_ms": 5000}
    released = await served.cache("lock", resource, "--release", held["token"])
    assert (released.exit_code, released.stdout) == (0, "")
    not_held = await served.cache("lock", resource, "--release", held["token"])
    assert not_held.exit_code == 1
    one_line(not_held.stderr)

    after = printed(await served.cache("lock", resource, "--ttl", "0.5", "--wait", "0"))
    assert after["fence"] > held["fence"]
    both = await served.cache("lock", resource, "--renew", "a", "--release", "b")
    assert both.exit_code == 2
    assert "--renew or --release" in one_line(both.stderr)


async def test_input_the_cache_refuses_is_one_line_and_exit_code_2(served: Served) -> None:
    bad_namespace = await served.cache("put", "Not A Namespace", "k", "v")
    assert bad_namespace.exit_code == 2
    assert "namespace" in one_line(bad_namespace.stderr)
    bad_ttl = await served.cache("put", served.ns, "k", "v", "--ttl", "0")
    assert bad_ttl.exit_code == 2
    assert "--ttl" in one_line(bad_ttl.stderr)


async def test_a_missing_or_refused_token_and_a_service_that_is_down_are_one_line(
    served: Served,
) -> None:
    missing = await cache_command(served.url, None, "get", served.ns, "k")
    assert missing.exit_code == 2
    line = one_line(missing.stderr)
    assert "OUTRIGGER_TOKEN" in line
    assert "--token" in line

    forged = bearer(cache_settings("memory://", jwt_secret=SECRET[::-1]), *ALL)
    refused = await cache_command(
        served.url, forged["Authorization"].removeprefix("Bearer "), "get", served.ns, "k"
    )
    assert refused.exit_code == 1
    assert one_line(refused.stderr) == "outrigger: bad token signature"
    reader = bearer(cache_settings("memory://"), "cache:read")
    forbidden = await cache_command(
        served.url, reader["Authorization"].removeprefix("Bearer "), "put", served.ns, "k", "v"
    )
    assert forbidden.exit_code == 1
    assert "cache:write" in one_line(forbidden.stderr)

    down = f"http://127.0.0.1:{free_port()}"
    unreachable = await cache_command(down, served.token, "lock", unique("job"))
    assert unreachable.exit_code == 1
    assert f"cannot reach {down}" in one_line(unreachable.stderr)
    flag = await cache_command(None, served.token, "get", served.ns, "k", "--url", down)
    assert f"cannot reach {down}" in one_line(flag.stderr)


def test_the_commands_load_the_sdk_only_when_they_run() -> None:
    code = (
        "import sys; from outrigger.cli import main; "
        "main.list_commands(None); "
        "print(','.join(m for m in ('outrigger.clients', 'httpx') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == ""
