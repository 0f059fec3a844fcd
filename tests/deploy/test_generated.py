"""The per-service deployment files are what `python -m deploy.generate` makes from the one list
of deployed services: adding a service is one entry there, then the generator."""

from __future__ import annotations

import importlib
import re
import sys

import pytest

from deploy.generate import __main__ as generate
from deploy.generate import panels, regions
from deploy.generate.platform import (
    ANY_CONSUMER,
    ANY_SERVICE,
    DEPLOYED,
    EVENT_FLOW,
    deployed,
    owners_running,
)
from outrigger import catalog
from outrigger.settings import PREFIX, Settings
from tests.deploy.support import REPO, run


def test_the_committed_files_are_up_to_date() -> None:
    result = run(sys.executable, "-m", "deploy.generate", "--check", cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_generated_files_cover_every_deployed_service() -> None:
    files = generate.expected()
    for service in DEPLOYED:
        assert f"{generate.SERVICES_DIR}/{service.name}.yaml" in files
        assert f"{generate.DASHBOARDS_DIR}/{service.name}.json" in files
        assert f"  {service.name}:\n    <<: *outrigger\n" in files["docker-compose.yml"]
        assert f'"{service.name}:{service.port}"' in files["prometheus/prometheus.yml"]


def test_own_settings_reach_compose_and_the_config_map_and_own_secrets_compose_only() -> None:
    files = generate.expected()
    compose = files["docker-compose.yml"]
    kustomization = files["deploy/k8s/base/kustomization.yaml"]
    for service in DEPLOYED:
        after = compose.split(f"\n  {service.name}:\n    <<: *outrigger\n")[1]
        block = re.split(r"\n  (?=[^ ])", after)[0]  # up to the next service
        for setting in service.settings:
            assert setting.name in own_settings(service.info.package), setting.name
            assert f"\n      - {setting.name}={setting.value}" in kustomization
            assert f"{setting.name}: ${{{setting.name}:-{setting.value}}}" in block
        for secret in service.own_secrets:
            assert f"{secret}: ${{{secret}:?set {secret} in .env" in block
    assert "OUTRIGGER_AUDIT_SIGNING_KEY" in deployed("audit").own_secrets


def own_settings(package: str) -> set[str]:
    """The variables of the service's own settings (its `Settings` subclass, not the kit's)."""
    module = importlib.import_module(f"services.{package}.settings")
    fields = {
        name
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Settings) and value is not Settings
        for name in value.model_fields
    }
    return {f"{PREFIX}{name.upper()}" for name in fields - Settings.model_fields.keys()}


def test_what_an_autoscaler_scales_on_is_on_the_services_dashboard() -> None:
    dashboards = {dashboard.uid: dashboard for dashboard in panels.dashboards()}
    for service in DEPLOYED:
        shown = " ".join(
            query.expr
            for row in dashboards[f"outrigger-{service.name}"].rows
            for panel in row.panels
            for query in panel.queries
        )
        for metric in service.scale_on:
            assert f"{metric.name})" in shown, f"{service.name} scales on {metric.name}, unseen"
    assert deployed("notifications").scale_on


def test_deployed_services_are_catalog_services_on_their_ports() -> None:
    names = [service.name for service in DEPLOYED]
    assert len(names) == len(set(names))
    for service in DEPLOYED:
        assert catalog.service(service.name).port == service.port


def test_a_region_is_replaced_in_place_keeping_its_indentation() -> None:
    text = "a:\n  # >>> generated: x\n  old: 1\n  # <<< generated: x\nb: 2\n"
    assert regions.replace(text, "x", "new: 2\nmore: 3\n") == (
        "a:\n  # >>> generated: x\n  new: 2\n  more: 3\n  # <<< generated: x\nb: 2\n"
    )


def test_a_file_without_its_region_is_an_error() -> None:
    with pytest.raises(regions.RegionMissing, match="generated: services"):
        regions.replace("a: 1\n", "services", "b: 2\n")


def test_who_must_run_for_a_query_to_have_data() -> None:
    assert not owners_running(frozenset({ANY_SERVICE}), {"rabbitmq", "postgres"})
    assert owners_running(frozenset({ANY_SERVICE}), {"cache"})
    assert owners_running(frozenset({ANY_CONSUMER}), {"cache"})
    assert not owners_running(frozenset({ANY_CONSUMER}), {"event-store"})
    assert not owners_running(frozenset({EVENT_FLOW}), {"cache"})
    assert owners_running(frozenset({EVENT_FLOW, "rabbitmq"}), {"cache", "event-store", "rabbitmq"})
