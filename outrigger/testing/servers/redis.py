"""A private `redis-server`."""

from __future__ import annotations

import signal
import socket
import subprocess

from outrigger.testing.servers.process import START_SECONDS, PrivateServer, wait_until
from outrigger.testing.serving import free_port


class PrivateRedis(PrivateServer):
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
