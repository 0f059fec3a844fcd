"""A private PostgreSQL cluster."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Literal

import psycopg

from outrigger.testing.servers.process import START_SECONDS, PrivateServer, alive, wait_until
from outrigger.testing.serving import free_port


class PrivatePostgres(PrivateServer):
    """A PostgreSQL cluster made by `initdb`, its postmaster run as a child of the tests and
    stopped by `pg_ctl`; superuser `postgres`, trust authentication."""

    def __init__(self) -> None:
        super().__init__("postgres", "postgres")
        self.port = free_port()
        self.data = self.root / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._bin = _postgres_bin()
        self._process: subprocess.Popen[bytes] | None = None
        self.run([
            f"{self._bin}/initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        ])  # fmt: skip

    def database_url(self, name: str) -> str:
        """The URL of database `name` on this cluster."""
        return self.url.rpartition("/")[0] + f"/{name}"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        running = self._process is not None and self._process.poll() is None
        return self._process.pid if running and self._process is not None else None

    def start(self) -> None:
        """Starts the postmaster (as a child, so a killed one is reaped at once) and waits
        until it accepts connections (after crash recovery, if it crashed)."""
        if self.pid is None:
            with (self.root / "log").open("ab") as log:
                self._process = subprocess.Popen(
                    [f"{self._bin}/postgres", "-D", str(self.data), "-p", str(self.port),
                     "-k", str(self.root), "-c", "listen_addresses=127.0.0.1",
                     "-c", "fsync=off", "-c", "max_connections=200"],
                    stdout=log, stderr=subprocess.STDOUT, cwd=self.root, **self.as_user(),
                )  # fmt: skip
        wait_until(self._accepts, f"PostgreSQL did not accept connections on port {self.port}")

    def _accepts(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            log = (self.root / "log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL exited:\n{log}")
        try:
            psycopg.connect(
                host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                connect_timeout=2,
            ).close()  # fmt: skip
        except psycopg.OperationalError:
            return False
        return True

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """`pg_ctl stop`: `fast` rolls back open transactions, `immediate` skips the checkpoint
        (the next start recovers from the WAL, as after a crash)."""
        if self.pid is not None:
            self.run([f"{self._bin}/pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"])
        self._reap()

    def kill(self) -> None:
        """A crash: SIGKILL to the postmaster and every process of the cluster at once."""
        pid = self.pid
        if pid is None:
            return
        children = _children(pid)
        for each in [pid, *children]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)
        self._reap()
        wait_until(
            lambda: not any(alive(each) for each in children),
            "PostgreSQL processes did not exit after SIGKILL",
        )

    def _reap(self) -> None:
        if self._process is not None:
            self._process.wait(START_SECONDS)
            self._process = None

    def restart(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        self.stop(mode)
        self.start()

    def close(self) -> None:
        self.kill()
        self.remove()


def _postgres_bin() -> str:
    found = shutil.which("pg_ctl")
    if found:
        return str(Path(found).resolve().parent)
    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    if not installed:
        raise RuntimeError("PostgreSQL is not installed (no pg_ctl); scripts/ensure-servers does")
    return installed[-1]


def _children(pid: int) -> list[int]:
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(Path(stat).read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.split("/")[2]))
    return found
