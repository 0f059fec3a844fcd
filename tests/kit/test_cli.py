"""The `outrigger` command as a user runs it: a real process, its exit code and its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from outrigger import __version__

OUTRIGGER = str(Path(sys.executable).with_name("outrigger"))


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OUTRIGGER_")}
    return subprocess.run(
        [OUTRIGGER, *args],
        env={**clean, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize("command", [["dev"], ["serve", "cache"], ["migrate"], ["token"]])
def test_a_bad_setting_exits_2_with_one_line(command: list[str], tmp_path: Path) -> None:
    result = run(*command, env={"OUTRIGGER_DATABASE_URL": "nonsense"}, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "OUTRIGGER_DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr


def test_token_is_signed_by_the_development_key_in_the_data_dir(tmp_path: Path) -> None:
    result = run("token", "--scope", "events:read", "--ttl", "60", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    secret = (tmp_path / ".outrigger" / "dev-jwt-secret").read_text().strip()
    claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False})
    assert "events:read" in str(claims.get("scope", claims.get("scopes")))
    again = run("token", cwd=tmp_path)
    assert again.returncode == 0
    jwt.decode(again.stdout.strip(), secret, algorithms=["HS256"], options={"verify_aud": False})


def test_token_with_an_unknown_scope_is_refused(tmp_path: Path) -> None:
    result = run("token", "--scope", "everything", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown scope everything" in result.stderr


def test_migrate_an_empty_sqlite_database(tmp_path: Path) -> None:
    result = run("migrate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".outrigger" / "outrigger.db").exists()
