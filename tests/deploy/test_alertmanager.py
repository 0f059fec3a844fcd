"""Alertmanager's configuration, checked by amtool, then run for real (Debian's binary, through
the same start.sh the compose file uses): alerts reach the webhook from the environment, and a
critical alert silences the warnings of its service."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.deploy.support import REPO, load, run, tool

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DEADLINE_SECONDS = 25.0


def test_amtool_accepts_the_configuration() -> None:
    result = run(tool("amtool"), "check-config", str(REPO / "alertmanager/alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_are_routed_by_severity_and_warnings_inhibited_by_criticals() -> None:
    config = load("alertmanager/alertmanager.yml")
    route = config["route"]
    assert set(route["group_by"]) == {"alertname", "service"}
    severities = {tuple(child["matchers"]): child["receiver"] for child in route["routes"]}
    assert severities == {('severity="critical"',): "critical", ('severity="warning"',): "warnings"}
    [inhibit] = config["inhibit_rules"]
    assert inhibit["source_matchers"] == ['severity="critical"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    assert inhibit["equal"] == ["service"]


class _Hooks(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def webhook() -> Iterator[tuple[int, list[tuple[str, dict[str, Any]]]]]:
    class Hooks(_Hooks):
        received: list[tuple[str, dict[str, Any]]] = []  # a fresh list per test

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], Hooks.received
    server.shutdown()
    server.server_close()


@pytest.fixture
def alertmanager(
    tmp_path: Path, webhook: tuple[int, list[tuple[str, dict[str, Any]]]]
) -> Iterator[str]:
    hook, _ = webhook
    port = _free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "ALERTMANAGER_BIN": tool("prometheus-alertmanager"),
        "ALERTMANAGER_TEMPLATE": str(REPO / "alertmanager/alertmanager.yml"),
        "ALERTMANAGER_CONFIG": str(tmp_path / "alertmanager.yml"),
        # `&` and `|` are what a naive sed substitution would mangle
        "ALERTMANAGER_WEBHOOK_URL": f"http://127.0.0.1:{hook}/warnings?token=a&b=c|d",
        "ALERTMANAGER_CRITICAL_WEBHOOK_URL": f"http://127.0.0.1:{hook}/critical?token=x&y=1",
    }
    log = tmp_path / "alertmanager.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                "/bin/sh",
                str(REPO / "alertmanager/start.sh"),
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"alertmanager exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("alertmanager did not become ready")


def _alert(name: str, service: str, severity: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "service": service, "severity": severity},
        "annotations": {"summary": f"{name} on {service}"},
    }


def test_a_critical_alert_reaches_its_webhook_and_silences_its_services_warnings(
    alertmanager: str, webhook: tuple[int, list[tuple[str, dict[str, Any]]]]
) -> None:
    _, received = webhook
    alerts = [
        _alert("OutriggerServiceDown", "cache", "critical"),
        _alert("OutriggerLatencyHigh", "cache", "warning"),
        _alert("OutriggerLatencyHigh", "event-store", "warning"),
    ]
    assert httpx.post(f"{alertmanager}/api/v2/alerts", json=alerts).status_code == 200

    deadline = time.monotonic() + DEADLINE_SECONDS
    while not received and time.monotonic() < deadline:
        time.sleep(0.2)
    assert received, "no notification within the critical route's group_wait"
    path, payload = received[0]
    assert path == "/critical?token=x&y=1"
    assert payload["receiver"] == "critical"
    assert [a["labels"]["alertname"] for a in payload["alerts"]] == ["OutriggerServiceDown"]

    state = {
        (a["labels"]["alertname"], a["labels"]["service"]): a["status"]
        for a in httpx.get(f"{alertmanager}/api/v2/alerts").json()
    }
    assert state[("OutriggerLatencyHigh", "cache")]["inhibitedBy"]
    assert state[("OutriggerLatencyHigh", "event-store")]["state"] == "active"


def test_the_webhook_url_is_written_verbatim(
    alertmanager: str, tmp_path: Path, webhook: tuple[int, list[tuple[str, dict[str, Any]]]]
) -> None:
    hook, _ = webhook
    config = load(str(tmp_path / "alertmanager.yml"))
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in config["receivers"]}
    assert urls == {
        "warnings": f"http://127.0.0.1:{hook}/warnings?token=a&b=c|d",
        "critical": f"http://127.0.0.1:{hook}/critical?token=x&y=1",
    }
