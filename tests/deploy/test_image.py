"""The image recipe (no Docker daemon here: its instructions are checked as text) and the health
check script it runs, for real."""

from __future__ import annotations

import fnmatch
import http.server
import re
import sys
import threading
from typing import TYPE_CHECKING

import pytest

from tests.deploy.support import REPO, run

if TYPE_CHECKING:
    from collections.abc import Iterator

DOCKERFILE = (REPO / "deploy/Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_the_build_is_multi_stage_from_a_pinned_slim_python() -> None:
    assert len(stages()) == 2
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base[1])


def test_dependencies_install_from_the_lock_file_before_the_code_is_copied() -> None:
    build = stages()[0]
    steps = [f"{name} {args}" for name, args in build]
    lock = steps.index("COPY pyproject.toml uv.lock ./")
    deps = next(
        i for i, s in enumerate(steps) if "uv sync --frozen --no-dev --no-install-project" in s
    )
    code = steps.index("COPY outrigger ./outrigger")
    project = next(
        i for i, s in enumerate(steps) if s.endswith("uv sync --frozen --no-dev --no-editable")
    )
    assert lock < deps < code < project


def test_uv_is_the_version_the_lock_file_was_made_with() -> None:
    pinned = re.search(r'"uv==([0-9.]+)"', (REPO / "pyproject.toml").read_text())
    assert pinned is not None
    assert f"ARG UV_VERSION={pinned[1]}" in DOCKERFILE


def test_the_final_image_runs_one_service_as_a_non_root_user() -> None:
    final = dict(stages()[1])
    assert re.fullmatch(r"\d+:\d+", final["USER"])
    assert not final["USER"].startswith("0:")
    assert final["ENTRYPOINT"] == '["outrigger", "serve"]'
    assert "CMD" not in final  # the service is the argument: `docker run outrigger:0.1.0 cache`
    assert final["HEALTHCHECK"].endswith('CMD ["python", "/app/healthcheck.py"]')
    assert "/var/lib/outrigger" in final["VOLUME"]
    assert "OUTRIGGER_DATA_DIR=/var/lib/outrigger" in final["ENV"]
    assert "PYTHONDONTWRITEBYTECODE=1" in final["ENV"]  # the root file system may be read-only
    assert "uv" not in " ".join(args for name, args in stages()[1] if name == "RUN")


def test_the_image_carries_the_oci_labels() -> None:
    labels = dict(stages()[1])["LABEL"]
    for key in ("title", "description", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_the_build_context_holds_what_the_image_copies() -> None:
    patterns = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        verdict = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                verdict = negated
        return verdict

    sources = [
        source
        for name, args in instructions()
        if name == "COPY" and "--from=" not in args
        for source in args.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert included(source), f"{source} is copied but .dockerignore leaves it out"
    for kept_out in (".venv", "tests", ".env", "bench"):
        assert not included(kept_out), f".dockerignore lets {kept_out} into the build context"


class _Probe(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def probe() -> Iterator[tuple[str, type[_Probe]]]:
    class Probe(_Probe):
        pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/readyz", Probe
    server.shutdown()
    server.server_close()


def test_the_health_check_passes_only_on_a_ready_answer(probe: tuple[str, type[_Probe]]) -> None:
    url, handler = probe
    script = str(REPO / "deploy/healthcheck.py")
    assert run(sys.executable, script, url, timeout=10).returncode == 0
    handler.status = 503
    not_ready = run(sys.executable, script, url, timeout=10)
    assert not_ready.returncode == 1
    assert "503" in not_ready.stderr
    gone = run(sys.executable, script, "http://127.0.0.1:9/readyz", timeout=10)
    assert gone.returncode == 1
