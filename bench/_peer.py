"""The peer baseline of `plugins.py`, one new `python3 -I -S` per job (how Piston and snekbox
run), and the closed-loop driver both use.

Run by `plugins.py` as a process of its own with the standard library only (`python -S
bench/_peer.py …`), so the peer's launcher is as lean as theirs: the benchmark's own process
(an AMQP connection, two pools, the service's modules) would make each fork dearer. Prints the
cell's figures as one JSON object. The leading underscore keeps `make bench` from running it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from _httpload import Figures

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

INPUT = {"n": 1}
MAX_CALLS = 100_000  # per cell, whatever its duration
RUNNER = (
    "import json, sys; sys.path.insert(0, sys.argv[1]); from noop import run; "
    "sys.stdout.write(json.dumps(run(json.loads(sys.stdin.buffer.read()))))"
)


async def closed_loop(
    call: Callable[[], Awaitable[bool]], clients: int, duration: float, cut: float
) -> Figures:
    """`clients` callers, each calling again once its call ended, for `duration` seconds (at
    most `MAX_CALLS` calls); each call is cut after `cut` seconds (an error). Runs/s, p50 and
    p99 of the calls."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration

    async def caller() -> None:
        nonlocal errors
        while time.perf_counter() < deadline and len(latencies) + errors < MAX_CALLS:
            started = time.perf_counter()
            try:
                ok = await asyncio.wait_for(call(), cut)
            except Exception as exc:  # counted; the first one of a cell is shown
                if not errors:
                    print(f"    (a call failed: {type(exc).__name__}: {exc})", file=sys.stderr)
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    if not latencies:
        return Figures(0.0, 0.0, 0.0, errors)
    latencies.sort()
    return Figures(
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        errors,
    )


def subprocess_job(python: str, folder: str, cwd: str) -> Callable[[], Awaitable[bool]]:
    """One job: a new `python -I -S` imports the plugin's module and calls its function on the
    input it reads from stdin; ok when it writes the expected result."""

    async def job() -> bool:
        child = await asyncio.create_subprocess_exec(
            python,
            *("-I", "-S", "-c", RUNNER, folder),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={},
            cwd=cwd,
        )
        output, _ = await child.communicate(json.dumps(INPUT).encode())
        return child.returncode == 0 and json.loads(output) == INPUT

    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="the plugin's folder (its module noop.py)")
    parser.add_argument("--cwd", required=True, help="the jobs' working directory")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--cut", type=float, default=10.0, help="seconds a job may take")
    args = parser.parse_args()
    job = subprocess_job(sys.executable, args.folder, args.cwd)
    figures = asyncio.run(closed_loop(job, args.clients, args.duration, args.cut))
    print(json.dumps(asdict(figures)))


if __name__ == "__main__":
    main()
