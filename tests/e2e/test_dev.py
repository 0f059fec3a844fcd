"""`outrigger dev` (what `make run` calls) as a user runs it: no server, no setting, one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from outrigger import catalog

OUTRIGGER = str(Path(sys.executable).with_name("outrigger"))
OFFSET = 20000


def test_dev_serves_every_installed_service_with_embedded_backends(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTRIGGER_", "OTEL_"))}
    process = subprocess.Popen(
        [OUTRIGGER, "dev", "--port-offset", str(OFFSET)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        services = catalog.installed()
        for info in services:
            _wait_ready(f"http://127.0.0.1:{info.port + OFFSET}", process)
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "export TOKEN=" in stdout
    for info in services:
        assert f"http://127.0.0.1:{info.port + OFFSET}" in stdout
    assert (tmp_path / ".outrigger" / "outrigger.db").exists()
    assert "Traceback" not in stderr


def _wait_ready(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "outrigger dev exited early"
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base}/readyz never answered 200")
