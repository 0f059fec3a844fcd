"""A real Prometheus scraping the real platform.

Every installed service runs as its own `outrigger serve` process against PostgreSQL (a fresh,
migrated database), Redis and a private RabbitMQ node with its Prometheus plugin (on ports of its
own: the shared broker is never reconfigured); beside them the Debian packages'
PostgreSQL and Redis exporters, Alertmanager (through alertmanager/start.sh) and Prometheus, with
a scrape configuration generated from prometheus/prometheus.yml pointed at them and the
repository's rules loaded. After a little traffic, every target must be up, every rule must
evaluate, and every recording rule and dashboard query must return data whenever what it
measures is running (`deploy/generate/panels.py` says who that is).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import yaml

from deploy.generate import panels
from deploy.generate.platform import (
    ANY_DATABASE_USER,
    ANY_SERVICE,
    EVENT_FLOW,
    owners_running,
)
from outrigger import catalog
from outrigger.auth import ALL_SCOPES, TokenIssuer
from outrigger.settings import Settings
from outrigger.testing.servers import PrivateRabbitMQ, private_rabbitmq
from tests.deploy.support import REPO, tool

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

OUTRIGGER = str(Path(sys.executable).with_name("outrigger"))
INFRASTRUCTURE = {"rabbitmq", "postgres", "redis"}  # always scraped here
RECORDING_OWNERS = {  # rule group: who must run for its recording rules to have data
    "outrigger-http": frozenset({ANY_SERVICE}),
    "outrigger-bus": frozenset({EVENT_FLOW}),
    "outrigger-db": frozenset({ANY_DATABASE_USER}),
    "cache-recording": frozenset({"cache"}),
}
START_SECONDS = 30.0
DATA_SECONDS = 30.0
RATE_WINDOW = "1m"  # $__rate_interval at a 1 s scrape interval


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """Started programs, each logging to a file, stopped in reverse order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        self.started.append((name, process))

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def wait_http(self, name: str, url: str) -> None:
        process = dict(self.started)[name]
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"{name} exited ({process.returncode}):\n{self.log(name)}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        pytest.fail(f"{name} did not answer {url} within {START_SECONDS:g}s:\n{self.log(name)}")

    def stop(self) -> None:
        for _, process in reversed(self.started):
            process.terminate()
        for _, process in reversed(self.started):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture
def rabbitmq() -> Iterator[PrivateRabbitMQ]:
    """A RabbitMQ node of the test's own, with the Prometheus plugin the compose file enables."""
    with private_rabbitmq(prometheus=True) as node:
        yield node


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    """A fresh database on the test server, migrated; its SQLAlchemy URL."""
    name = f"outrigger_live_{uuid.uuid4().hex[:10]}"
    admin = postgres_url.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    try:
        migrated = subprocess.run(
            [OUTRIGGER, "migrate"],
            env={**_clean_environment(), "OUTRIGGER_DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert migrated.returncode == 0, migrated.stderr
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OUTRIGGER_", "OTEL_"))}


def live_config(
    addresses: dict[str, str], prometheus: str, alertmanager: str, rabbitmq: str
) -> dict[str, Any]:
    """prometheus/prometheus.yml pointed at what runs here: compose host names become local
    ports, services that are not installed are left out, everything else is kept as is."""
    config: dict[str, Any] = yaml.safe_load((REPO / "prometheus/prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(REPO / "prometheus" / pattern) for pattern in config["rule_files"]]
    known = {
        **addresses,
        "rabbitmq:15692": rabbitmq,
        "alertmanager:9093": alertmanager,
        "localhost:9090": prometheus,
    }
    absent = {f"{info.name}:{info.port}" for info in catalog.SERVICES if not info.installed}
    for manager in config["alerting"]["alertmanagers"]:
        for static in manager["static_configs"]:
            static["targets"] = [known[target] for target in static["targets"]]
    jobs = []
    for job in config["scrape_configs"]:
        statics = []
        for static in job["static_configs"]:
            unknown = set(static["targets"]) - known.keys() - absent
            assert not unknown, f"prometheus.yml scrapes {unknown}: teach this test to run it"
            targets = [known[t] for t in static["targets"] if t in known]
            if targets:
                statics.append({**static, "targets": targets})
        if statics:
            jobs.append({**job, "static_configs": statics})
    config["scrape_configs"] = jobs
    return config


def test_prometheus_scrapes_the_platform_and_every_query_has_data(
    tmp_path: Path,
    processes: Processes,
    database: str,
    rabbitmq: PrivateRabbitMQ,
    redis_url: str,
) -> None:
    services = catalog.installed()
    running = {info.name for info in services}
    ports = {info.name: _free_port() for info in services}
    secret = secrets.token_hex(32)
    environment = {
        **_clean_environment(),
        "OUTRIGGER_ENV": "production",
        "OUTRIGGER_HOST": "127.0.0.1",
        "OUTRIGGER_SECRETS_DIR": str(tmp_path / "no-secrets"),
        "OUTRIGGER_DATABASE_URL": database,
        "OUTRIGGER_REDIS_URL": redis_url,
        "OUTRIGGER_AMQP_URL": rabbitmq.url,
        "OUTRIGGER_JWT_SECRET": secret,
        "OUTRIGGER_STEALTH_KEYS": f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
        "OUTRIGGER_AUDIT_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "OUTRIGGER_CACHE_KEY_PREFIX": f"live{secrets.token_hex(4)}",
        "OUTRIGGER_NOTIFICATIONS_KEY_PREFIX": f"live{secrets.token_hex(4)}",
        "OUTRIGGER_NOTIFICATIONS_INGEST_EVENTS": "true",  # the event store's events flow in
        "OUTRIGGER_NOTIFICATIONS_TRIM_INTERVAL_SECONDS": "1",  # history gauges counted soon
        "OUTRIGGER_EVENT_STORE_METRICS_INTERVAL_SECONDS": "0.5",
    }
    for info in services:
        data = tmp_path / info.package
        data.mkdir()
        env = {
            **environment,
            "OUTRIGGER_PORT": str(ports[info.name]),
            "OUTRIGGER_DATA_DIR": str(data),
        }
        processes.start(info.name, [OUTRIGGER, "serve", info.name], env, data)

    exporters = {"postgres-exporter:9187": _free_port(), "redis-exporter:9121": _free_port()}
    dsn = database.replace("+psycopg", "") + "?sslmode=disable"
    processes.start(
        "postgres-exporter",
        [
            tool("prometheus-postgres-exporter"),
            f"--web.listen-address=127.0.0.1:{exporters['postgres-exporter:9187']}",
        ],
        {"PATH": "/usr/bin:/bin", "DATA_SOURCE_NAME": dsn},
        tmp_path,
    )
    redis = urlsplit(redis_url)
    processes.start(
        "redis-exporter",
        [
            tool("prometheus-redis-exporter"),
            f"--redis.addr=redis://{redis.hostname}:{redis.port or 6379}",
            f"--web.listen-address=127.0.0.1:{exporters['redis-exporter:9121']}",
        ],
        {"PATH": "/usr/bin:/bin"},
        tmp_path,
    )
    alertmanager = f"127.0.0.1:{_free_port()}"
    processes.start(
        "alertmanager",
        [
            "/bin/sh",
            str(REPO / "alertmanager/start.sh"),
            f"--storage.path={tmp_path / 'alertmanager'}",
            f"--web.listen-address={alertmanager}",
            "--cluster.listen-address=",
        ],
        {
            "PATH": "/usr/bin:/bin",
            "ALERTMANAGER_BIN": tool("prometheus-alertmanager"),
            "ALERTMANAGER_TEMPLATE": str(REPO / "alertmanager/alertmanager.yml"),
            "ALERTMANAGER_CONFIG": str(tmp_path / "alertmanager.yml"),
            "ALERTMANAGER_WEBHOOK_URL": "http://127.0.0.1:9/",
        },
        tmp_path,
    )
    prometheus = f"127.0.0.1:{_free_port()}"
    addresses = {f"{info.name}:{info.port}": f"127.0.0.1:{ports[info.name]}" for info in services}
    addresses |= {target: f"127.0.0.1:{port}" for target, port in exporters.items()}
    config = live_config(
        addresses, prometheus, alertmanager, f"127.0.0.1:{rabbitmq.prometheus_port}"
    )
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    processes.start(
        "prometheus",
        [
            tool("prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address={prometheus}",
        ],
        {"PATH": "/usr/bin:/bin"},
        tmp_path,
    )

    for info in services:
        processes.wait_http(info.name, f"http://127.0.0.1:{ports[info.name]}/readyz")
    processes.wait_http("alertmanager", f"http://{alertmanager}/-/ready")
    processes.wait_http("prometheus", f"http://{prometheus}/-/ready")

    token = TokenIssuer.from_settings(Settings(jwt_secret=secret)).mint(
        "live-test", sorted(ALL_SCOPES), 600, channels=["**"]
    )
    traffic: list[str] = []
    order = sorted(services, key=lambda info: info.name != "cache")  # tag entries, then change them
    for info in order:
        base = f"http://127.0.0.1:{ports[info.name]}"
        with httpx.Client(base_url=base, timeout=5) as client:
            _kit_traffic(client, traffic)
            drive = TRAFFIC.get(info.name)
            if drive is not None:
                client.headers["Authorization"] = f"Bearer {token}"
                drive(client, traffic)

    with httpx.Client(base_url=f"http://{prometheus}/api/v1", timeout=5) as api:
        _check(api, processes, running, traffic)


def _check(api: httpx.Client, processes: Processes, running: set[str], traffic: list[str]) -> None:
    down = _wait(lambda: _targets_down(api), "every target up")
    assert not down, f"targets down: {down}\n" + "\n".join(
        f"--- {name}\n{processes.log(name)}" for name, _ in processes.started
    )

    expected = _expected_queries(running | INFRASTRUCTURE)
    missing = _wait(lambda: [q for q in expected if not _has_data(api, q)], "every query answered")
    assert not missing, (
        "no data (running: "
        + ", ".join(sorted(running))
        + "):\n  "
        + "\n  ".join(missing)
        + "\ntraffic:\n  "
        + "\n  ".join(traffic)
    )

    groups = api.get("/rules").json()["data"]["groups"]
    broken = [
        f"{rule['name']}: {rule['lastError']}"
        for group in groups
        for rule in group["rules"]
        if rule["health"] == "err"
    ]
    assert not broken
    loaded = {group["name"] for group in groups}
    assert loaded >= set(RECORDING_OWNERS) | {"outrigger-alerts", "backends-alerts"}


def _wait(poll: Callable[[], list[str]], what: str) -> list[str]:
    deadline = time.monotonic() + DATA_SECONDS
    remaining = poll()
    while remaining and time.monotonic() < deadline:
        time.sleep(0.5)
        remaining = poll()
    return remaining


def _targets_down(api: httpx.Client) -> list[str]:
    targets = api.get("/targets").json()["data"]["activeTargets"]
    if not targets:
        return ["no target discovered yet"]
    return [
        f"{t['labels']['job']} {t['scrapeUrl']}: {t['health']} {t['lastError']}"
        for t in targets
        if t["health"] != "up"
    ]


def _expected_queries(running: set[str]) -> list[str]:
    """Every recording rule and dashboard query that should answer with what runs here."""
    expected = []
    for path in sorted((REPO / "prometheus/rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            records = [rule["record"] for rule in group["rules"] if "record" in rule]
            if not records:
                continue
            assert group["name"] in RECORDING_OWNERS, f"who must run for {group['name']}?"
            if owners_running(RECORDING_OWNERS[group["name"]], running):
                expected += records
    for dashboard in panels.dashboards():
        for row in dashboard.rows:
            for panel in row.panels:
                for query in panel.queries:
                    if not query.sporadic and owners_running(query.owners, running):
                        expected.append(query.expr.replace("$__rate_interval", RATE_WINDOW))
    return expected


def _has_data(api: httpx.Client, query: str) -> bool:
    answer = api.get("/query", params={"query": query}).json()
    assert answer["status"] == "success", f"{query}: {answer}"
    return bool(answer["data"]["result"])


def _note(traffic: list[str], response: httpx.Response) -> None:
    traffic.append(f"{response.request.method} {response.request.url.path} {response.status_code}")


def _kit_traffic(client: httpx.Client, traffic: list[str]) -> None:
    """Probes, a scrape, an unknown route and a request without a token: every service has them."""
    for path in ("/healthz", "/readyz", "/readyz", "/metrics"):
        response = client.get(path)
        assert response.status_code == 200, f"{client.base_url}{path}: {response.text}"
    for path in ("/v1/no-such-route", "/v1/streams/live/events", "/v1/cache/live/key"):
        _note(traffic, client.get(path))


def _event_store_traffic(client: httpx.Client, traffic: list[str]) -> None:
    """Appends (one a retry, one a conflict, one with personal data), reads and a subscription."""
    event = {"id": str(uuid.uuid4()), "type": "OrderPlaced", "data": {"total": 12}}
    append = {"expected_version": "any", "events": [event]}
    for body in (
        append,
        append,
        {"expected_version": "no_stream", "events": [{"type": "X", "data": {}}]},
    ):
        _note(traffic, client.post("/v1/streams/order-1/events", json=body))
    personal = {
        "type": "CustomerRegistered",
        "data": {"email": "ada@example.org"},
        "metadata": {"subject": "customer-1", "sensitive": ["email"]},
    }
    _note(traffic, client.post("/v1/streams/customer-1/events", json={"events": [personal]}))
    _note(traffic, client.get("/v1/streams/order-1/events"))
    _note(traffic, client.get("/v1/streams/customer-1/events"))
    _note(traffic, client.get("/v1/log", params={"after": 0}))
    with client.stream("GET", "/v1/subscribe", params={"after": 0}) as stream:
        _note(traffic, stream)
        for line in stream.iter_lines():
            if line.startswith("id:"):
                break


def _cache_traffic(client: httpx.Client, traffic: list[str]) -> None:
    """A put tagged with a stream, a hit, misses, a fill lease, an expiry, a contended lock."""
    put = client.put(
        "/v1/cache/live/order-1", params={"ttl": 60, "tags": "stream:order-1"}, content=b"{}"
    )
    _note(traffic, put)
    _note(traffic, client.get("/v1/cache/live/order-1"))
    _note(traffic, client.get("/v1/cache/live/absent"))
    _note(traffic, client.get("/v1/cache/live/to-fill", params={"fill": "lease"}))
    _note(traffic, client.put("/v1/cache/live/brief", params={"ttl": 1}, content=b"x"))
    for _ in range(2):
        _note(traffic, client.post("/v1/locks/live-resource", json={"ttl_ms": 10000}))


def _audit_traffic(client: httpx.Client, traffic: list[str]) -> None:
    """Records (one batch, a retry, an invalid one), a page, proofs, checkpoints, a verification.
    The event store's reveals reach it through the queue."""
    tenant = "live"
    first, second = (
        {
            "id": str(uuid.uuid4()),
            "source": "live-test",
            "type": "live.checked",
            "actor": "live-test",
            "action": "check",
            "resource": f"live/{n}",
            "tenant": tenant,
        }
        for n in (1, 2)
    )
    for body in ({"records": [first, second]}, first, {"records": [{"id": "no-source"}]}):
        _note(traffic, client.post("/v1/records", json=body))
    _note(traffic, client.get("/v1/records", params={"tenant": tenant, "limit": 10}))
    inclusion = {"tenant": tenant, "index": 0, "tree_size": 2}
    _note(traffic, client.get("/v1/proofs/inclusion", params=inclusion))
    consistency = {"tenant": tenant, "from_size": 1, "to_size": 2}
    _note(traffic, client.get("/v1/proofs/consistency", params=consistency))
    _note(traffic, client.post("/v1/checkpoints", params={"tenant": tenant}))
    _note(traffic, client.get("/v1/checkpoints/latest", params={"tenant": tenant}))
    _note(traffic, client.get("/v1/verify", params={"tenant": tenant}))


def _notifications_traffic(client: httpx.Client, traffic: list[str]) -> None:
    """A publish and its retry (a duplicate), a subscription that replays it and then receives a
    live one, a channel described. The event store's events come in through the queue."""

    def publish(key: str) -> httpx.Response:
        body = {"event": "live.checked", "data": {"key": key}, "id": key}
        return client.post("/v1/channels/live.checks/events", json=body)

    _note(traffic, publish("live-1"))
    _note(traffic, publish("live-1"))
    query = {"channel": "live.>", "since": "earliest"}
    with client.stream("GET", "/v1/sse", params=query) as stream:
        _note(traffic, stream)
        lines = stream.iter_lines()
        next(line for line in lines if line.startswith("id:"))  # replayed
        _note(traffic, publish("live-2"))
        next(line for line in lines if line.startswith("id:"))  # live
    _note(traffic, client.get("/v1/channels/live.checks"))


def _plugin_executor_traffic(client: httpx.Client, traffic: list[str]) -> None:
    """The plugins listed, two runs through the sandbox, input its schema refuses (a 422,
    counted as invalid_input), and a job through the broker until done."""
    _note(traffic, client.get("/v1/plugins"))
    text = {"text": "to be or not to be", "top": 2}
    for _ in range(2):
        _note(traffic, client.post("/v1/plugins/text-stats/run", json=text))
    _note(traffic, client.post("/v1/plugins/text-stats/run", json={"text": 7}))
    job = client.post("/v1/jobs", json={"plugin": "text-stats", "input": text})
    _note(traffic, job)
    deadline = time.monotonic() + 30
    while (state := client.get(job.headers["Location"])).json()["state"] != "done":
        assert time.monotonic() < deadline, f"job not done: {state.text}"
        time.sleep(0.1)
    _note(traffic, state)


TRAFFIC: dict[str, Callable[[httpx.Client, list[str]], None]] = {
    "audit": _audit_traffic,
    "event-store": _event_store_traffic,
    "cache": _cache_traffic,
    "notifications": _notifications_traffic,
    "plugin-executor": _plugin_executor_traffic,
}
