"""Finding the checking programs (an absent one fails the test, it is never skipped), running
them, and reading the deployment files."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

PACKAGES = {  # program: the Debian package scripts/ensure-ops-tools installs it from
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "docker-compose": "docker-compose",
    "prometheus-postgres-exporter": "prometheus-postgres-exporter",
    "prometheus-redis-exporter": "prometheus-redis-exporter",
    "rabbitmqctl": "rabbitmq-server",
}


def tool(name: str) -> str:
    """The path of program `name`, or a test failure saying how to get it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run scripts/ensure-ops-tools "
            f"(Debian package {PACKAGES.get(name, name)})"
        )
    return path


def run(*args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


@functools.cache
def kustomize() -> tuple[str, ...]:
    """`kustomize build` or `kubectl kustomize`, whichever embeds kustomize 4 or newer."""
    modern = re.compile(r"v([4-9]|[1-9][0-9])\.")
    if shutil.which("kustomize") and modern.search(run("kustomize", "version").stdout):
        return ("kustomize", "build")
    if shutil.which("kubectl"):
        version = run("kubectl", "version", "--client").stdout
        if re.search(r"^Kustomize Version: v([4-9]|[1-9][0-9])\.", version, re.MULTILINE):
            return ("kubectl", "kustomize")
    pytest.fail(
        "no kustomize 4 or newer: install kustomize or kubectl 1.21+ (see scripts/ensure-ops-tools)"
    )


def render(overlay: str) -> list[dict[str, Any]]:
    result = run(*kustomize(), str(REPO / "deploy/k8s/overlays" / overlay))
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def load(path: str) -> Any:
    return yaml.safe_load((REPO / path).read_text())


def env_example() -> dict[str, str]:
    """The variables of .env.example, with a stand-in for every empty (required) one."""
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value or f"stand-in-{name.lower().replace('_', '-')}"
    return values
