"""The `outrigger` command as a user runs it: a real process, its exit code and its output."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from outrigger import __version__, catalog
from outrigger.cli.output import without_password

OUTRIGGER = str(Path(sys.executable).with_name("outrigger"))
HEAVY = ("fastapi", "starlette", "sqlalchemy", "alembic", "uvicorn", "psycopg", "aiosqlite")
REPO = Path(__file__).resolve().parents[2]


def run(
    *args: str, home: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`outrigger ARGS` with no OUTRIGGER_* setting, `home` as XDG_DATA_HOME, in `cwd`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OUTRIGGER_")}
    return subprocess.run(
        [OUTRIGGER, *args],
        env={**clean, "XDG_DATA_HOME": str(home), **(env or {})},
        cwd=cwd or home,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a command that stopped on a user error (exit code 2)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("outrigger: "), lines[0]
    return lines[0]


def dev_secret(data_dir: Path) -> str:
    return (data_dir / "dev-jwt-secret").read_text().strip()


def claims(token: str, secret: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(
        token, secret, algorithms=["HS256"], options={"verify_aud": False}
    )
    return decoded


def test_version(tmp_path: Path) -> None:
    result = run("--version", home=tmp_path)
    assert result.returncode == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize("command", [["dev"], ["serve", "cache"], ["migrate"], ["token"]])
def test_a_bad_setting_exits_2_with_one_line(command: list[str], tmp_path: Path) -> None:
    result = run(*command, home=tmp_path, env={"OUTRIGGER_DATABASE_URL": "nonsense"})
    assert "OUTRIGGER_DATABASE_URL" in one_line(result)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["serve", "nope"], "no service called 'nope'; the services are audit, event-store"),
        (["serve"], "Missing argument 'SERVICE'; see 'outrigger serve --help'"),
        (["migrate", "cache"], "service cache has no migrations; those with migrations: audit"),
        (["migrate", "nope"], "no service called 'nope'"),
        (["dev", "--port-offset", "x"], "'--port-offset': 'x' is not a valid integer range"),
        (["token", "--scope", "everything"], "unknown scope everything; known: admin"),
        (["token", "--ttl", "0"], "Invalid value for '--ttl'"),
        (["nosuch"], "No such command 'nosuch'; see 'outrigger --help'"),
        (["--bogus"], "No such option"),
    ],
)
def test_a_user_error_is_one_line_and_exit_2(
    command: list[str], expected: str, tmp_path: Path
) -> None:
    assert expected in one_line(run(*command, home=tmp_path))


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["token"],
        ["serve", "--help"],
        ["events", "--help"],
        ["cache", "--help"],
        ["audit", "--help"],
        ["plugins", "--help"],
        ["plugins", "list", "--help"],
        ["x"],
    ],
)
def test_light_commands_import_no_web_framework_or_driver(
    command: list[str], tmp_path: Path
) -> None:
    """What makes `outrigger` slow to start: FastAPI, SQLAlchemy, alembic, uvicorn, drivers."""
    script = (
        "import sys\n"
        "from outrigger.cli import main\n"
        f"try:\n    main({command!r})\n"
        "except SystemExit:\n    pass\n"
        "heavy = {m.partition('.')[0] for m in sys.modules} & set(" + repr(HEAVY) + ")\n"
        "print('imported:', *sorted(heavy), file=sys.stderr)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTRIGGER_")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "XDG_DATA_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1] == "imported:", f"outrigger {' '.join(command)}"


def test_help_lists_each_service_command_under_its_catalog_name(tmp_path: Path) -> None:
    result = run("--help", home=tmp_path)
    assert result.returncode == 0, result.stderr
    with_commands = [info for info in catalog.installed() if info.has_commands]
    assert with_commands, "no service has commands: the lazy listing is untested"
    for info in with_commands:
        assert info.commands().name == info.command
        assert f"  {info.command} " in result.stdout


def test_token_is_signed_by_the_key_in_the_data_dir_wherever_it_runs(tmp_path: Path) -> None:
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    first = run("token", "--scope", "events:read", "--ttl", "60", home=tmp_path)
    assert first.returncode == 0, first.stderr
    data_dir = tmp_path / "outrigger"
    secret = dev_secret(data_dir)
    assert claims(first.stdout.strip(), secret)["scope"] == "events:read"
    again = run("token", home=tmp_path, cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    claims(again.stdout.strip(), secret)
    assert not (elsewhere / ".outrigger").exists()


def test_the_data_dir_and_its_files_are_private(tmp_path: Path) -> None:
    result = run("migrate", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert run("token", home=tmp_path).returncode == 0
    data_dir = tmp_path / "outrigger"
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    files = sorted(path.name for path in data_dir.iterdir())
    assert {"outrigger.db", "outrigger.event_store.db", "dev-jwt-secret"} <= set(files)
    for path in data_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path.name} is not 0600"


def test_outrigger_data_dir_overrides_the_default(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen"
    result = run("migrate", home=tmp_path, env={"OUTRIGGER_DATA_DIR": str(chosen)})
    assert result.returncode == 0, result.stderr
    assert (chosen / "outrigger.db").exists()
    assert not (tmp_path / "outrigger").exists()


def test_a_filled_compose_env_file_changes_nothing(tmp_path: Path) -> None:
    """`.env` is docker compose's: its keys must not replace the development key."""
    example = (REPO / ".env.example").read_text()
    filled = example.replace("OUTRIGGER_JWT_SECRET=", "OUTRIGGER_JWT_SECRET=" + "c" * 64)
    filled = filled.replace("OUTRIGGER_LOG_LEVEL=INFO", "OUTRIGGER_LOG_LEVEL=nonsense")
    (tmp_path / ".env").write_text(filled)
    result = run("token", home=tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    claims(result.stdout.strip(), dev_secret(tmp_path / "outrigger"))


def listening_on_an_offset_port(base: int) -> tuple[socket.socket, int]:
    """A socket listening on `base + offset` for some free offset `outrigger dev` accepts."""
    for offset in range(30000, 40000, 97):
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", base + offset))
        except OSError:
            holder.close()
            continue
        holder.listen()
        return holder, offset
    raise AssertionError("no free port to occupy")


def test_a_port_in_use_is_one_line_before_any_banner(tmp_path: Path) -> None:
    holder, offset = listening_on_an_offset_port(catalog.service("event-store").port)
    with holder:
        busy = holder.getsockname()[1]
        result = run("dev", "--port-offset", str(offset), home=tmp_path)
        line = one_line(result)
        assert f"port {busy} is in use" in line
        assert "--port-offset" in line
        assert result.stdout == ""
        served = run("serve", "cache", home=tmp_path, env={"OUTRIGGER_PORT": str(busy)})
        assert f"port {busy} is in use" in one_line(served)
        assert "OUTRIGGER_PORT" in one_line(served)


def test_migrating_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql+psycopg://user:hunter2@127.0.0.1:{port}/nowhere"
    result = run("migrate", home=tmp_path, env={"OUTRIGGER_DATABASE_URL": url})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("outrigger: ")]
    assert f"cannot migrate postgresql+psycopg://user:***@127.0.0.1:{port}/nowhere" in line
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://user:s3cret@db:5432/app",
            "postgresql+psycopg://user:***@db:5432/app",
        ),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("amqp://guest:p@ss@mq:5672/", "amqp://guest:***@mq:5672/"),
        ("amqp://guest@mq:5672/", "amqp://guest@mq:5672/"),
        ("sqlite+aiosqlite:////var/lib/outrigger/outrigger.db", None),
        ("memory://", None),
    ],
)
def test_urls_are_shown_without_their_password(url: str, shown: str | None) -> None:
    assert without_password(url) == (shown or url)


def test_serving_lifts_the_soft_open_files_limit_to_the_hard_one() -> None:
    """Every connection is a file: a shell's soft limit of 1,024 must not cap a hub."""
    code = (
        "import resource\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "from outrigger.cli.serve import _open_files_to_the_hard_limit\n"
        "_open_files_to_the_hard_limit()\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "print(soft == hard or (hard == resource.RLIM_INFINITY and soft > 256))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "True"
