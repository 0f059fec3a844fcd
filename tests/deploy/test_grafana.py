"""The Grafana dashboards and provisioning: valid JSON, unique ids, known data sources, trace
links, and every query parsed by Prometheus's own parser (promtool, on a generated rule file)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from deploy.generate.platform import DEPLOYED
from outrigger import catalog
from tests.deploy.support import REPO, load, run, tool

if TYPE_CHECKING:
    from pathlib import Path

DASHBOARDS = sorted((REPO / "grafana/dashboards").glob("*.json"))
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def dashboard(path: Path) -> dict[str, Any]:
    model: dict[str, Any] = json.loads(path.read_text())
    return model


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in model["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expression) of every query."""
    return [
        (path.name, panel["title"], target["expr"])
        for path in DASHBOARDS
        for panel in panels(dashboard(path))
        for target in panel.get("targets", [])
    ]


def promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in re.sub(r"\{\{.*?\}\}", "", expr), f"unknown Grafana variable in {expr}"
    return expr


def test_there_is_an_overview_and_a_dashboard_per_deployed_service() -> None:
    names = {path.stem for path in DASHBOARDS}
    assert names == {"overview", *(service.name for service in DEPLOYED)}


def test_the_overview_has_a_row_per_service_in_the_catalog() -> None:
    model = dashboard(REPO / "grafana/dashboards/overview.json")
    rows = [panel["title"] for panel in model["panels"] if panel["type"] == "row"]
    assert rows == [*(info.name for info in catalog.SERVICES), "Backends"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_a_dashboard_is_valid_with_unique_panel_ids(path: Path) -> None:
    model = dashboard(path)
    assert model["uid"]
    assert len(model["uid"]) <= 40
    ids = [panel["id"] for panel in panels(model)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    for panel in panels(model):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs))
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24


def test_every_query_parses(tmp_path: Path) -> None:
    found = queries()
    assert len(found) > 40
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard:query_{index}:parse", "expr": promql(expr)}
                    for index, (_, _, expr) in enumerate(found)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run(tool("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_latency_panels_link_to_the_slow_traces_in_jaeger() -> None:
    linked = 0
    for path in DASHBOARDS:
        for panel in panels(dashboard(path)):
            if panel.get("fieldConfig", {}).get("defaults", {}).get("unit") != "s":
                continue
            if "latency" not in panel["title"].lower():
                continue
            [link] = panel["fieldConfig"]["defaults"]["links"]
            panes = json.loads(link["url"].removeprefix("/explore?panes="))
            [pane] = panes.values()
            [query] = pane["queries"]
            assert pane["datasource"] == "jaeger"
            assert query["service"].startswith("outrigger-")
            assert query["minDuration"] == "${__value.raw}s"
            linked += 1
    assert linked >= len(catalog.SERVICES) + len(DEPLOYED)


def test_data_sources_are_provisioned_with_the_uids_the_dashboards_use() -> None:
    sources = {
        ds["uid"]: ds
        for ds in load("grafana/provisioning/datasources/datasources.yaml")["datasources"]
    }
    assert sources["prometheus"]["type"] == "prometheus"
    assert sources["prometheus"]["isDefault"] is True
    assert sources["jaeger"]["type"] == "jaeger"
    destinations = sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert destinations[0]["datasourceUid"] == "jaeger"


def test_the_dashboard_provider_reads_where_compose_mounts_the_dashboards() -> None:
    [provider] = load("grafana/provisioning/dashboards/dashboards.yaml")["providers"]
    compose = load("docker-compose.observability.yml")
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert provider["allowUiUpdates"] is False


def test_bucket_latency_panels_show_exemplars_that_prometheus_stores() -> None:
    shown = 0
    for path in DASHBOARDS:
        for panel in panels(dashboard(path)):
            for target in panel.get("targets", []):
                if target.get("exemplar"):
                    assert "_bucket{" in target["expr"]
                    shown += 1
    assert shown >= len(DEPLOYED)
    prometheus = load("docker-compose.observability.yml")["services"]["prometheus"]
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
