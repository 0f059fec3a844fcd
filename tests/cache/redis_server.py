"""Stopping and starting the shared Redis, for the test that proves the adapter survives it.

Every stop is paired with a start (in a `finally`) that waits until Redis answers PING again.
"""

from __future__ import annotations

import subprocess
import time

PORT = 6379
START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    str(PORT),
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def _answers() -> bool:
    ping = subprocess.run(
        ["redis-cli", "-p", str(PORT), "ping"], capture_output=True, text=True, check=False
    )
    return ping.stdout.strip() == "PONG"


def _wait(*, up: bool, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _answers() != up:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Redis did not go {'up' if up else 'down'} in {timeout:g}s")
        time.sleep(0.1)


def stop_redis() -> None:
    subprocess.run(
        ["redis-cli", "-p", str(PORT), "shutdown", "nosave"], capture_output=True, check=False
    )
    _wait(up=False)


def start_redis() -> None:
    if not _answers():
        subprocess.run(START, check=True, capture_output=True)
    _wait(up=True)
