"""`outrigger audit tail|query|verify|export` against the audit service served for real.

The commands run in-process through click's runner (in a worker thread: the SDK's blocking
client runs its own event loop) against the app served by uvicorn on SQLite and PostgreSQL;
Ctrl-C and the startup imports are checked on the real `outrigger` process. Offline verification
is checked on a real export, and on copies of it tampered with in every way a reader could.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import psycopg
import pytest
from click.testing import CliRunner, Result

from outrigger.cli import main
from outrigger.db import conninfo
from outrigger.notes import NoteSigner
from outrigger.resilience import policies
from outrigger.testing import bearer, free_port, serving, unique
from services.audit.app import build_app
from tests.audit.api_support import BACKENDS, database_for, record, settings_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from services.audit.settings import AuditSettings

OUTRIGGER = str(Path(sys.executable).with_name("outrigger"))
ALL = ("audit:read", "audit:write", "audit:reveal")


async def audit_command(url: str | None, token: str | None, *args: str) -> Result:
    """`outrigger audit ARGS` with $OUTRIGGER_AUDIT_URL and $OUTRIGGER_TOKEN set (None: unset).

    Each command starts with fresh resilience policies, as in a process of its own: in this one
    they would share the breaker of the named policy `audit`, and one test's unreachable service
    would open it for the next."""
    env = {"OUTRIGGER_AUDIT_URL": url, "OUTRIGGER_TOKEN": token}
    policies.clear()
    return await asyncio.to_thread(
        CliRunner().invoke, main, ["audit", *args], env=env, catch_exceptions=False
    )


@dataclass
class Served:
    url: str
    token: str
    settings: AuditSettings
    http: httpx.AsyncClient

    @property
    def key(self) -> str:
        return self.settings.signer().verifier_key

    async def audit(self, *args: str) -> Result:
        return await audit_command(self.url, self.token, *args)

    async def write(self, *records: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self.http.post("/v1/records", json={"records": list(records)})
        assert response.status_code == 201, response.text
        receipts: list[dict[str, Any]] = response.json()["receipts"]
        return receipts


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_for(request.param, request, tmp_path)


@pytest.fixture
async def served(database: str, tmp_path: Path) -> AsyncIterator[Served]:
    settings = settings_for(database, tmp_path)
    headers = bearer(settings, *ALL)
    async with (
        serving(build_app(settings)) as url,
        httpx.AsyncClient(base_url=url, headers=headers) as http,
    ):
        yield Served(url, headers["Authorization"].removeprefix("Bearer "), settings, http)


def lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def one_line(text: str) -> str:
    found = text.strip().splitlines()
    assert len(found) == 1, text
    assert "Traceback" not in text
    return found[0]


async def test_query_prints_matching_records_newest_first_as_json_lines_or_a_table(
    served: Served,
) -> None:
    tenant = unique("t")
    await served.write(*[record(tenant, actor="ada" if n % 2 else "bob") for n in range(7)])
    await served.write(record(tenant, actor="ada", outcome="failure", resource="doc/1"))

    every = lines(await served.audit("query", "--tenant", tenant))
    assert [found["index"] for found in every] == list(range(7, -1, -1))
    assert set(every[0]) >= {"id", "source", "type", "time", "index", "leaf_hash", "data"}
    assert every[0]["time"].endswith("Z")
    adas = await served.audit("query", "--tenant", tenant, "--actor", "ada", "--limit", "2")
    assert [found["index"] for found in lines(adas)] == [7, 5]
    failed = await served.audit("query", "--tenant", tenant, "--outcome", "failure")
    assert [found["resource"] for found in lines(failed)] == ["doc/1"]
    none = await served.audit("query", "--tenant", tenant, "--from", "2999-01-01")
    assert (none.exit_code, none.stdout) == (0, "")

    table = await served.audit("query", "--tenant", tenant, "--limit", "3", "--table")
    assert table.exit_code == 0, table.stderr
    heading, *rows = table.stdout.splitlines()
    assert heading.split() == ["INDEX", "TIME", "TYPE", "ACTOR", "ACTION", "OUTCOME", "RESOURCE"]
    assert [row.split()[0] for row in rows] == ["7", "6", "5"]
    assert rows[0].split()[2:] == ["document.updated", "ada", "update", "failure", "doc/1"]
    assert len({row.index("document.updated") for row in rows}) == 1  # aligned


async def test_tail_prints_the_newest_then_new_records_and_stops_after_count(
    served: Served,
) -> None:
    tenant = unique("t")
    await served.write(*[record(tenant) for _ in range(4)])
    argv = ["--tenant", tenant, "--last", "2", "--count", "4", "--interval", "0.05"]
    tailing = asyncio.create_task(served.audit("tail", *argv, "--actor", "alice"))
    await asyncio.sleep(0.5)
    await served.write(record(tenant, actor="bob"), record(tenant), record(tenant))
    result = await asyncio.wait_for(tailing, 30)
    assert [found["index"] for found in lines(result)] == [2, 3, 5, 6]


async def test_ctrl_c_ends_tail_quietly_with_exit_code_130(served: Served) -> None:
    tenant = unique("t")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OUTRIGGER_")},
        "OUTRIGGER_TOKEN": served.token,
        "OUTRIGGER_AUDIT_URL": served.url,
    }
    tail = await asyncio.create_subprocess_exec(
        OUTRIGGER, "audit", "tail", "--tenant", tenant, "--interval", "0.1",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await served.write(record(tenant, data={"n": 1}))
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


async def test_verify_on_the_service_prints_what_it_checked(served: Served) -> None:
    tenant = unique("t")
    await served.write(*[record(tenant) for _ in range(3)])
    [result] = lines(await served.audit("verify", "--tenant", tenant))
    assert result == {
        "tenant": tenant,
        "tree_size": 3,
        "records_checked": 3,
        "retained_from": 0,
        "checkpoints_checked": 1,
        "ok": True,
        "mismatch": None,
    }


@pytest.mark.postgres
async def test_verify_on_the_service_names_the_record_edited_in_the_database(
    audit_postgres_url: str, tmp_path: Path
) -> None:
    settings = settings_for(audit_postgres_url, tmp_path)
    token = bearer(settings, *ALL)["Authorization"].removeprefix("Bearer ")
    tenant = unique("t")
    async with serving(build_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, headers=bearer(settings, *ALL)) as http:
            body = {"records": [record(tenant, data={"title": "Résumé"}) for _ in range(4)]}
            assert (await http.post("/v1/records", json=body)).status_code == 201
        async with await psycopg.AsyncConnection.connect(
            conninfo(audit_postgres_url), autocommit=True
        ) as sql:
            await sql.execute(
                "UPDATE audit.records SET body = convert_to(replace(convert_from(body, 'UTF8'), "
                "'Résumé', 'Resume'), 'UTF8') WHERE tenant = %(tenant)s AND idx = 2",
                {"tenant": tenant},
            )
        failed = await audit_command(url, token, "verify", "--tenant", tenant)
    assert failed.exit_code == 1
    [result] = [orjson.loads(line) for line in failed.stdout.splitlines()]
    assert (result["ok"], result["mismatch"]["index"]) == (False, 2)
    line = one_line(failed.stderr)
    assert line.startswith(f"outrigger: tenant '{tenant}' does not verify: record 2: ")


async def exported(served: Served, tmp_path: Path, tenant: str) -> Path:
    await served.write(*[record(tenant, data={"n": n, "text": "naïve ✓"}) for n in range(6)])
    await served.write(*[record(tenant, data={"n": n}) for n in range(6, 11)])
    output = tmp_path / "audit.ndjson"
    result = await served.audit("export", "--tenant", tenant, "-o", str(output))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert names(tmp_path, "*.ndjson*") == ["audit.ndjson"]
    return output


def names(folder: Path, pattern: str = "*") -> list[str]:
    return sorted(path.name for path in folder.glob(pattern))


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


async def verify_offline(path: Path, key: str, *more: str) -> Result:
    """`outrigger audit verify PATH --public-key KEY` with no token and no service."""
    argv = ["audit", "verify", str(path), "--public-key", key, *more]
    return await asyncio.to_thread(
        CliRunner().invoke, main, argv, env={"OUTRIGGER_TOKEN": None}, catch_exceptions=False
    )


async def test_an_export_verifies_offline_with_the_services_key(
    served: Served, tmp_path: Path
) -> None:
    tenant = unique("t")
    path = await exported(served, tmp_path, tenant)
    written = read_lines(path)
    assert [orjson.loads(line)["kind"] for line in written] == ["checkpoint"] + ["record"] * 11

    [result] = lines(await verify_offline(path, served.key))
    assert result == {
        "ok": True,
        "tenant": tenant,
        "tree_size": 11,
        "root_hash": orjson.loads(written[0])["root_hash"],
        "checkpoints_checked": 1,
        "records_checked": 11,
        "line": None,
        "index": None,
        "reason": None,
    }
    key_file = write_lines(tmp_path / "audit.pub", [served.key])
    assert (await verify_offline(path, str(key_file), "--tenant", tenant)).exit_code == 0
    other = await verify_offline(path, served.key, "--tenant", "someone-else")
    assert other.exit_code == 1
    assert f"is an export of tenant '{tenant}', not 'someone-else'" in one_line(other.stderr)

    to_stdout = await served.audit("export", "--tenant", tenant)
    assert to_stdout.exit_code == 0, to_stdout.stderr
    piped = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["audit", "verify", "-", "--public-key", served.key],
        input=to_stdout.stdout_bytes,
    )
    assert piped.exit_code == 0, piped.stderr


def edit(line: str, **changes: Any) -> str:
    return orjson.dumps({**orjson.loads(line), **changes}).decode()


def edited_leaf(lines: list[str]) -> list[str]:
    leaf = orjson.loads(lines[4])["leaf"].replace('"n":3', '"n":30')
    return [*lines[:4], edit(lines[4], leaf=leaf), *lines[5:]]


def edited_proof(lines: list[str]) -> list[str]:
    proof = orjson.loads(lines[8])["proof"]
    return [*lines[:8], edit(lines[8], proof=[proof[1], proof[0], *proof[2:]]), *lines[9:]]


def bad_signature(lines: list[str]) -> list[str]:
    note = orjson.loads(lines[0])["note"]
    body, _, signature = note.partition("\n\n")
    name, _, encoded = signature.removesuffix("\n").rpartition(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[10] ^= 0x40
    forged = f"{body}\n\n{name} {base64.b64encode(bytes(raw)).decode()}\n"
    return [edit(lines[0], note=forged), *lines[1:]]


def grown_tree(lines: list[str]) -> list[str]:
    """The note's body claims a bigger tree, under the original signature."""
    note = orjson.loads(lines[0])["note"]
    origin, size, rest = note.split("\n", 2)
    return [edit(lines[0], note=f"{origin}\n{int(size) + 1}\n{rest}"), *lines[1:]]


@pytest.mark.parametrize(
    ("tamper", "line", "reason"),
    [
        (edited_leaf, 5, "line 5: the leaf does not hash to its leaf_hash"),
        (edited_proof, 9, "line 9: the inclusion proof does not lead to the root"),
        (bad_signature, 1, "line 1: checkpoint: the signature of outrigger.audit does not verify"),
        (grown_tree, 1, "line 1: checkpoint: the signature of outrigger.audit does not verify"),
        (lambda lines: lines[:3] + lines[4:3:-1] + lines[3:4] + lines[5:], 5, "line 5: index 2"),
    ],
    ids=["edited leaf", "edited proof", "bad signature", "grown tree", "reordered"],
)
async def test_a_tampered_export_fails_offline_naming_its_first_bad_line(
    served: Served, tmp_path: Path, tamper: Any, line: int, reason: str
) -> None:
    path = await exported(served, tmp_path, unique("t"))
    tampered = write_lines(tmp_path / "tampered.ndjson", tamper(read_lines(path)))
    result = await verify_offline(tampered, served.key)
    assert result.exit_code == 1
    [printed] = [orjson.loads(text) for text in result.stdout.splitlines()]
    assert (printed["ok"], printed["line"]) == (False, line)
    assert one_line(result.stderr).startswith(f"outrigger: {tampered} {reason}")


async def test_an_export_fails_offline_with_a_wrong_or_malformed_key(
    served: Served, tmp_path: Path
) -> None:
    path = await exported(served, tmp_path, unique("t"))
    stranger = NoteSigner.generate("outrigger.audit").verifier_key
    wrong = await verify_offline(path, stranger)
    assert wrong.exit_code == 1
    assert one_line(wrong.stderr) == (
        f"outrigger: {path} line 1: checkpoint: the note carries no signature of outrigger.audit"
    )
    malformed = await verify_offline(path, "not-a-key")
    assert malformed.exit_code == 2
    assert "--public-key" in one_line(malformed.stderr)
    no_key = await asyncio.to_thread(CliRunner().invoke, main, ["audit", "verify", str(path)])
    assert no_key.exit_code == 2
    assert "--public-key" in one_line(no_key.stderr)
    key_alone = await asyncio.to_thread(
        CliRunner().invoke, main, ["audit", "verify", "--public-key", served.key]
    )
    assert key_alone.exit_code == 2
    assert "FILE" in one_line(key_alone.stderr)


async def test_bad_input_is_one_line_with_exit_code_2(served: Served) -> None:
    bad_tenant = await served.audit("query", "--tenant", "Not A Tenant")
    assert bad_tenant.exit_code == 2
    assert "tenant" in one_line(bad_tenant.stderr)
    bad_time = await served.audit("export", "--from", "yesterday")
    assert bad_time.exit_code == 2
    assert "--from" in one_line(bad_time.stderr)
    bad_outcome = await served.audit("tail", "--outcome", "maybe")
    assert bad_outcome.exit_code == 2
    assert "--outcome" in one_line(bad_outcome.stderr)


async def test_a_missing_or_refused_token_and_a_service_that_is_down_are_one_line(
    served: Served, tmp_path: Path
) -> None:
    missing = await audit_command(served.url, None, "query")
    assert missing.exit_code == 2
    assert "OUTRIGGER_TOKEN" in one_line(missing.stderr)
    reader = bearer(served.settings, "audit:write")["Authorization"].removeprefix("Bearer ")
    forbidden = await audit_command(served.url, reader, "verify")
    assert forbidden.exit_code == 1
    assert "audit:read" in one_line(forbidden.stderr)
    down = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "out"
    out.mkdir()
    for command in (["query"], ["tail"], ["verify"], ["export", "-o", str(out / "x.ndjson")]):
        unreachable = await audit_command(down, served.token, *command)
        assert unreachable.exit_code == 1, command
        assert f"cannot reach {down}" in one_line(unreachable.stderr)
    assert names(out) == []  # no partial export left behind
    unknown = await served.audit("export", "--tenant", unique("t"))
    assert unknown.exit_code == 1
    assert unknown.stdout == ""
    one_line(unknown.stderr)


def test_the_commands_load_the_sdk_only_when_they_run() -> None:
    code = (
        "import sys; from outrigger.cli import main; "
        "main.get_command(None, 'audit'); "
        "print(','.join(m for m in ('outrigger.clients', 'httpx', 'cryptography', 'pydantic') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == ""
