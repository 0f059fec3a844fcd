"""What the HTTP benchmarks share: child processes, waiting for them, and `wrk` runs and medians.

Imported by the scripts beside it (`python bench/<name>.py` puts this folder on `sys.path`);
the leading underscore keeps `make bench` from running it as a benchmark.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import statistics
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Figures:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    worst_p99_ms: float = 0.0
    """Of a median: the highest p99 of its rounds (one bad round must not hide behind the rest)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Returns once `url` answers at all (an HTTP error status counts as an answer)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError as exc:
            if getattr(exc, "code", None):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:g} s") from exc
            time.sleep(0.2)


@contextlib.contextmanager
def process(
    args: list[str],
    env: dict[str, str] | None = None,
    log: Path | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (in `cwd`, else the repository) with its output to `log` (or nowhere),
    terminated by PID on exit."""
    with contextlib.ExitStack() as files:
        output = files.enter_context(log.open("wb")) if log else subprocess.DEVNULL
        child = subprocess.Popen(
            args, env={**os.environ, **(env or {})}, stdout=output, stderr=output, cwd=cwd or ROOT
        )
        try:
            yield child
        finally:
            child.terminate()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str,
    *,
    connections: int,
    duration: int,
    threads: int = 2,
    headers: Sequence[str] = (),
    script: Path | None = None,
    label: str = "",
) -> Figures:
    """One `wrk --latency` run; socket errors are printed, non-2xx answers counted."""
    command = ["wrk", "-c", str(connections), "-t", str(min(threads, connections))]
    command += ["-d", f"{duration}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    found_rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert found_rps, output

    def percentile(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        assert found, output
        return float(found.group(1)) * _UNIT[found.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors:.*", output)
    if sockets:
        print(f"    ({label or url}: {sockets.group(0)})")
    return Figures(
        float(found_rps.group(1)),
        percentile("50"),
        percentile("99"),
        int(errors.group(1)) if errors else 0,
    )


def median(runs: Sequence[Figures]) -> Figures:
    return Figures(
        statistics.median(f.rps for f in runs),
        statistics.median(f.p50_ms for f in runs),
        statistics.median(f.p99_ms for f in runs),
        sum(f.errors for f in runs),
        max(f.p99_ms for f in runs),
    )


def line(name: str, figures: Figures, unit: str = "req/s") -> str:
    errors = f"  {figures.errors} non-2xx" if figures.errors else ""
    return (
        f"  {name:<28} {figures.rps:>9,.0f} {unit}  p50 {figures.p50_ms:6.2f} ms  "
        f"p99 {figures.p99_ms:6.2f} ms{errors}"
    )
