"""`outrigger dev` run as a user runs it, for the end-to-end tests: a subprocess on free ports,
its banner, its log, stopped if still running."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from outrigger import catalog

if TYPE_CHECKING:
    from collections.abc import Iterator

OUTRIGGER = str(Path(sys.executable).with_name("outrigger"))
STOPS_WITHIN_SECONDS = 2.0


class Dev:
    """A running `outrigger dev`: its banner (stdout), its log (stderr, in a file), its ports."""

    def __init__(self, process: subprocess.Popen[str], log: Path, offset: int) -> None:
        self.process = process
        self.log = log
        self.offset = offset
        self.banner = self._read_banner()

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{catalog.service(service).port + self.offset}"

    @property
    def token(self) -> str:
        [line] = [line for line in self.banner if "export OUTRIGGER_TOKEN=" in line]
        return line.split("=", 1)[1]

    def log_lines(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in self.log.read_text().splitlines() if line]

    def _read_banner(self) -> list[str]:
        assert self.process.stdout is not None
        lines: list[str] = []
        while not any(line.startswith("  curl ") for line in lines):
            line = self.process.stdout.readline()
            assert line, f"outrigger dev ended before its banner:\n{self.log.read_text()}"
            lines.append(line.rstrip("\n"))
        return lines


@contextlib.contextmanager
def running_dev(tmp_path: Path, **settings: str) -> Iterator[Dev]:
    """`outrigger dev` on free ports, data under `tmp_path`; stopped (SIGINT) if still running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTRIGGER_", "OTEL_"))}
    env |= {"XDG_DATA_HOME": str(tmp_path / "xdg"), **settings}
    offset = free_port_offset()
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [OUTRIGGER, "dev", "--port-offset", str(offset)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        yield Dev(process, log, offset)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()


def free_port_offset() -> int:
    """An offset (as `--port-offset` takes) at which every service's port is free just now."""
    ports = [info.port for info in catalog.SERVICES]
    for offset in random.sample(range(20000, 50000, 10), 200):
        with contextlib.ExitStack() as held:
            try:
                for port in ports:
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
            return offset
    raise AssertionError("no port offset with every port free")
