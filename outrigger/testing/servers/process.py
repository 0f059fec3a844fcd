"""What the private servers share: a temporary directory, the system user to run as, waiting."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

START_SECONDS = 60.0


def answers(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_until(condition: Callable[[], bool], what: str, timeout: float = START_SECONDS) -> None:
    """Polls `condition` until it holds; `TimeoutError` saying `what` did not happen, if not."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:g} s")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is dead, only not yet reaped
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


class PrivateServer:
    """What the three share: a directory, a system user to run as (when root), logs."""

    def __init__(self, kind: str, user: str | None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"outrigger-{kind}-"))
        self.user = user if os.geteuid() == 0 and user else None
        if self.user:
            owner = pwd.getpwnam(self.user)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    def as_user(self) -> dict[str, Any]:
        """`subprocess` options that run a program as the server's user (when root)."""
        if self.user is None:
            return {}
        owner = pwd.getpwnam(self.user)
        return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    def run(self, argv: list[str], env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            argv, env=env, cwd=self.root, capture_output=True, text=True, check=False,
            timeout=START_SECONDS, **self.as_user(),
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr}")
        return str(done.stdout)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
