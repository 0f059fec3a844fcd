"""Stopping and starting the shared servers, for the tests that prove we survive it.

Every stop is paired with a start that waits until the server answers again.
"""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import time


def _wait_port(port: int, *, up: bool, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            if up:
                return
        except OSError:
            if not up:
                return
        time.sleep(0.2)
    raise TimeoutError(f"port {port} did not go {'up' if up else 'down'} in {timeout}s")


def _pg_version() -> str:
    return os.path.basename(sorted(glob.glob("/etc/postgresql/*"))[-1])


def stop_postgres() -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "stop", "-m", "fast"],
        check=True,
    )
    _wait_port(5432, up=False)


def start_postgres() -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "start"],
        check=False,
    )
    _wait_port(5432, up=True)


def stop_rabbitmq() -> None:
    """Stops the RabbitMQ node: every client connection drops.

    The whole node, not `stop_app`: after `stop_app`/`start_app`, RabbitMQ 3.10 comes back
    without its quorum-queue dead-letter supervisor, and every new quorum queue then fails.
    """
    subprocess.run(["rabbitmqctl", "-q", "stop"], check=True, capture_output=True)
    _wait_port(5672, up=False)


def start_rabbitmq() -> None:
    subprocess.run(["rabbitmq-server", "-detached"], check=False, capture_output=True)
    _wait_port(5672, up=True, timeout=120.0)
    subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=False, capture_output=True)
