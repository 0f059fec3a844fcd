"""The compose files as `docker compose` reads them: valid, healthy, pinned, secrets required."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from deploy.generate.platform import DEPLOYED, POSTGRES
from tests.deploy.support import REPO, env_example, run, tool

BASE = ("-f", "docker-compose.yml")
WITH_OBSERVABILITY = (*BASE, "-f", "docker-compose.observability.yml")
SECRET = re.compile(r"PASSWORD|SECRET|KEY|TOKEN")
ONE_SHOT = {"migrate"}


def compose(*files: str, env: dict[str, str]) -> Any:
    """The configuration `docker-compose config` resolves (files merged, variables filled)."""
    result = run(tool("docker-compose"), *files, "config", cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def environment() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", **env_example()}


@pytest.fixture(scope="module")
def platform(environment: dict[str, str]) -> Any:
    return compose(*BASE, env=environment)


@pytest.fixture(scope="module")
def observed(environment: dict[str, str]) -> Any:
    return compose(*WITH_OBSERVABILITY, env=environment)


@pytest.mark.parametrize("files", [BASE, WITH_OBSERVABILITY], ids=["platform", "observability"])
def test_compose_accepts_the_files(files: tuple[str, ...], environment: dict[str, str]) -> None:
    result = run(tool("docker-compose"), *files, "config", "--quiet", cwd=REPO, env=environment)
    assert result.returncode == 0, result.stderr


def test_a_missing_secret_stops_compose_naming_it(environment: dict[str, str]) -> None:
    without = {k: v for k, v in environment.items() if k != "OUTRIGGER_JWT_SECRET"}
    result = run(tool("docker-compose"), *BASE, "config", "--quiet", cwd=REPO, env=without)
    assert result.returncode != 0
    assert "set OUTRIGGER_JWT_SECRET in .env" in result.stderr


@pytest.mark.parametrize("path", ["docker-compose.yml", "docker-compose.observability.yml"])
def test_no_secret_has_a_default(path: str) -> None:
    text = (REPO / path).read_text()
    uses = re.findall(r"\$\{([A-Z0-9_]+)([^}]*)\}", text)
    secrets = [(name, rest) for name, rest in uses if SECRET.search(name)]
    assert secrets
    for name, rest in secrets:
        assert rest.startswith(":?"), f"{path}: ${{{name}{rest}}} must be required (:?)"


def test_every_required_variable_is_in_env_example() -> None:
    text = "".join(
        (REPO / f).read_text() for f in ("docker-compose.yml", "docker-compose.observability.yml")
    )
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    listed = env_example()
    assert required <= listed.keys(), required - listed.keys()


def test_every_service_has_a_health_check(observed: Any) -> None:
    for name, service in observed["services"].items():
        check = service.get("healthcheck", {})
        if name in ONE_SHOT:
            assert check.get("test") == ["NONE"], f"{name} is a one-shot job"
            assert service["restart"] == "no"
            continue
        assert check.get("test", ["NONE"])[0] in {"CMD", "CMD-SHELL"}, f"{name} has no health check"


def test_every_image_is_pinned_to_a_version(observed: Any) -> None:
    for name, service in observed["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag"
        # PostgreSQL releases are major.minor; everything else here major.minor.patch
        assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?", tag), f"{name}: {image} floats"


def test_the_services_come_from_the_one_image_on_their_ports(platform: Any) -> None:
    services = platform["services"]
    for deployed in DEPLOYED:
        service = services[deployed.name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["image"] == services["migrate"]["image"]
        assert service["command"] == [deployed.name]
        assert service["ports"] == [{"published": deployed.port, "target": deployed.port}]
        assert service["healthcheck"]["test"][-1] == f"http://127.0.0.1:{deployed.port}/readyz"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        env = service["environment"]
        assert env["OUTRIGGER_ENV"] == "production"
        grace = float(env["OUTRIGGER_SHUTDOWN_GRACE_SECONDS"])
        assert grace <= 10, "SSE streams end at once: the drain waits for requests only"
        # then a sandbox lets its longest run finish (its wall-clock ceiling)
        drain = grace + float(env.get("OUTRIGGER_PLUGINS_MAX_WALL_SECONDS", 0))
        stop_grace = float(service["stop_grace_period"].removesuffix("s"))
        assert drain < stop_grace <= drain + 10, "no time to drain, or a long wait for nothing"
        for backend in deployed.backends:
            assert env[backend.setting].split("://")[1].startswith(("outrigger:", ":"))
        if deployed.open_files is not None:  # each open connection holds a file descriptor
            assert service["ulimits"] == {"nofile": deployed.open_files}
        waits = service["depends_on"]
        for backend in deployed.backends:
            assert waits[backend.name] == {"condition": "service_healthy"}
        if POSTGRES in deployed.backends:
            assert waits["migrate"] == {"condition": "service_completed_successfully"}


def mounts(service: Any) -> list[tuple[str, str]]:
    """(source, target) of each volume, from the short form docker-compose 1 prints."""
    return [tuple(volume.split(":")[:2]) for volume in service.get("volumes", [])]


def test_backends_keep_their_data_in_named_volumes(platform: Any) -> None:
    for name in ("postgres", "redis", "rabbitmq"):
        sources = [source for source, _ in mounts(platform["services"][name])]
        assert set(sources) & set(platform["volumes"]), f"{name} keeps no data in a named volume"
    assert platform["services"]["postgres"]["image"].startswith("postgres:15.")
    assert platform["services"]["redis"]["image"].startswith("redis:7.")


def test_rabbitmq_serves_management_and_prometheus() -> None:
    plugins = (REPO / "deploy/rabbitmq/enabled_plugins").read_text()
    assert "rabbitmq_management" in plugins
    assert "rabbitmq_prometheus" in plugins


def test_every_service_sends_traces_to_jaeger(observed: Any) -> None:
    for deployed in DEPLOYED:
        env = observed["services"][deployed.name]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    jaeger = observed["services"]["jaeger"]["environment"]
    assert jaeger["COLLECTOR_OTLP_ENABLED"] == "true"


def test_the_sampling_default_is_the_same_in_jaeger_and_the_services(observed: Any) -> None:
    strategies = json.loads((REPO / "jaeger/sampling.json").read_text())
    default = strategies["default_strategy"]
    assert default["type"] == "probabilistic"
    for deployed in DEPLOYED:
        env = observed["services"][deployed.name]["environment"]
        assert float(env["OTEL_TRACES_SAMPLER_ARG"]) == default["param"]
    assert observed["services"]["jaeger"]["environment"]["SAMPLING_STRATEGIES_FILE"] == (
        "/etc/jaeger/sampling.json"
    )


def test_mounted_configuration_exists(observed: Any) -> None:
    for name, service in observed["services"].items():
        for source, _ in mounts(service):
            if source.startswith("/"):
                assert (REPO / source).exists(), f"{name} mounts {source}, which is missing"
