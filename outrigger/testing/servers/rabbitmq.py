"""A private RabbitMQ node."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

from outrigger.testing.servers.process import (
    START_SECONDS,
    PrivateServer,
    alive,
    answers,
    wait_until,
)
from outrigger.testing.serving import free_port


class PrivateRabbitMQ(PrivateServer):
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
            return pid if alive(pid) else None
        return None

    def start(self) -> None:
        if self._process is None or self._process.poll() is not None:
            with (self.root / "server.log").open("ab") as log:
                self._process = subprocess.Popen(
                    [f"{self._scripts}/rabbitmq-server"], env=self.env, cwd=self.root,
                    stdout=log, stderr=subprocess.STDOUT, **self.as_user(),
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
