"""Private PostgreSQL, Redis and RabbitMQ instances for the tests that break a server.

Each one runs on free ports of 127.0.0.1 with its data in a temporary directory of its own, is
stopped, killed, paused and restarted by the test that owns it, and is removed by `close()`. The
servers on the standard ports (what `make test` shares with the developer) are never touched.
Run as root, PostgreSQL and RabbitMQ run as their own system users, as they require.

    with private_postgres() as postgres:
        postgres.stop("immediate")
        postgres.start()
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psycopg

from outrigger.testing.serving import free_port

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

START_SECONDS = 60.0


def answers(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_until(condition: Callable[[], bool], what: str, timeout: float = START_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:g} s")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is dead, only not yet reaped
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


class _Private:
    """What the three share: a directory, a system user to run as (when root), logs."""

    def __init__(self, kind: str, user: str | None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"outrigger-{kind}-"))
        self.user = user if os.geteuid() == 0 and user else None
        if self.user:
            owner = pwd.getpwnam(self.user)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    def _as_user(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        owner = pwd.getpwnam(self.user)
        return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    def run(
        self, argv: list[str], env: dict[str, str] | None = None, *, log: Path | None = None
    ) -> str:
        done = subprocess.run(
            argv, env=env, cwd=self.root, capture_output=True, text=True, check=False,
            timeout=START_SECONDS, **self._as_user(),
        )  # fmt: skip
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr}{tail}")
        return str(done.stdout)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis(_Private):
    """`redis-server` without persistence (or with an fsynced append-only file)."""

    def __init__(self, *, appendonly: bool = False) -> None:
        super().__init__("redis", None)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._argv = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--dir", str(self.root), "--logfile", str(self.root / "redis.log"),
            "--appendonly", "yes" if appendonly else "no", "--appendfsync", "always",
        ]  # fmt: skip
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if not self.running:
            self._process = subprocess.Popen(self._argv, stdout=subprocess.DEVNULL)
        wait_until(self._pong, f"Redis did not answer on port {self.port}")

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """A clean shutdown (SIGTERM): without persistence, every key is gone afterwards."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self.resume()
                self._process.send_signal(sig)
            self._process.wait(START_SECONDS)
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freezes the server (SIGSTOP): connections open, nothing answers."""
        if self.running:
            assert self._process is not None
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.running:
            assert self._process is not None
            self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.kill()
        self.remove()


class PrivatePostgres(_Private):
    """A PostgreSQL cluster made by `initdb`, run by `pg_ctl`; user `postgres`, trust auth."""

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
                    stdout=log, stderr=subprocess.STDOUT, cwd=self.root, **self._as_user(),
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
            lambda: not any(_alive(each) for each in children),
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


class PrivateRabbitMQ(_Private):
    """A RabbitMQ node of its own: node name, AMQP, distribution, epmd and metrics ports,
    Erlang cookie, data and logs. `prometheus` enables `rabbitmq_prometheus` on
    `prometheus_port`. Starting takes several seconds: share one per test session."""

    def __init__(self, *, prometheus: bool = False) -> None:
        super().__init__("rabbitmq", "rabbitmq")
        self.port, self.prometheus_port = free_port(), free_port()
        self.node = f"outrigger-{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        epmd_port = free_port()
        config = (
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            f"prometheus.tcp.port = {self.prometheus_port}\nprometheus.tcp.ip = 127.0.0.1\n"
        )
        files = {
            "rabbitmq.conf": config,
            "enabled_plugins": "[rabbitmq_prometheus].\n" if prometheus else "[].\n",
            "rabbitmq-env.conf": "",
            ".erlang.cookie": secrets.token_hex(20).upper(),
        }
        for name, content in files.items():
            (self.root / name).write_text(content)
        (self.root / ".erlang.cookie").chmod(0o400)
        if self.user:
            owner = pwd.getpwnam(self.user)
            for path in self.root.iterdir():
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),  # the node and rabbitmqctl find the cookie here
            "LANG": "C.UTF-8",
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_PID_FILE": str(self.root / "beam.pid"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.root / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
        }
        self._scripts = _rabbitmq_scripts()
        self._process: subprocess.Popen[bytes] | None = None

    def rabbitmqctl(self, *args: str) -> str:
        """Runs `rabbitmqctl -n <this node> -q ARGS…` and returns what it printed."""
        return self.run([f"{self._scripts}/rabbitmqctl", "-n", self.node, "-q", *args], self.env)

    @property
    def pid(self) -> int | None:
        """The Erlang VM's pid while it runs."""
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.root / "beam.pid").read_text().strip())
            return pid if _alive(pid) else None
        return None

    def start(self) -> None:
        if self._process is None or self._process.poll() is not None:
            with (self.root / "server.log").open("ab") as log:
                self._process = subprocess.Popen(
                    [f"{self._scripts}/rabbitmq-server"], env=self.env, cwd=self.root,
                    stdout=log, stderr=subprocess.STDOUT, **self._as_user(),
                )  # fmt: skip
        wait_until(self._started, f"RabbitMQ node {self.node} did not open port {self.port}")

    def _started(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"RabbitMQ node {self.node} exited:\n{log}")
        return answers(self.port)

    def stop(self) -> None:
        """A clean shutdown: on SIGTERM the node closes every connection and halts, as
        `rabbitmqctl stop` has it do (without starting a second Erlang VM to ask)."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """A crash: SIGKILL to the Erlang VM. See `settle()` first."""
        self._signal(signal.SIGKILL)

    def settle(self) -> None:
        """Writes to disk what a node that has run for a few minutes would have: RabbitMQ 3.10
        saves its quorum queue registry (Ra's DETS tables) every 3 minutes, so a quorum queue
        declared less than 3 minutes before a crash comes back without a leader, and the node
        never confirms a message routed to it. Call it before `kill()` to crash a node in the
        state of one that has been up a while."""
        self.rabbitmqctl("eval", "[dets:sync(T) || T <- [ra_directory_reverse, ra_log_meta]].")

    def _signal(self, sig: signal.Signals) -> None:
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        self._reap()

    def _reap(self) -> None:
        if self._process is not None:
            self._process.wait(START_SECONDS)
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.kill()
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.run(["epmd", "-port", self.env["ERL_EPMD_PORT"], "-kill"], self.env)
        self.remove()


def _rabbitmq_scripts() -> str:
    """The real scripts: Debian's /usr/sbin wrappers redirect output and refuse other users."""
    if Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists():
        return "/usr/lib/rabbitmq/bin"
    found = shutil.which("rabbitmq-server")
    if found is None:
        raise RuntimeError(
            "RabbitMQ is not installed (no rabbitmq-server); scripts/ensure-servers does"
        )
    return str(Path(found).parent)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def private_redis(*, appendonly: bool = False) -> Iterator[PrivateRedis]:
    server = PrivateRedis(appendonly=appendonly)
    try:
        server.start()
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def private_rabbitmq(*, prometheus: bool = False) -> Iterator[PrivateRabbitMQ]:
    server = PrivateRabbitMQ(prometheus=prometheus)
    try:
        server.start()
        yield server
    finally:
        server.close()
