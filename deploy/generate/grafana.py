"""Grafana dashboard JSON from the panel descriptions: layout, ids, units and trace links."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deploy.generate.panels import Dashboard, Panel, Query

PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
JAEGER = {"type": "jaeger", "uid": "jaeger"}
WIDTH = 24
HEIGHT = 8
PER_LINE = 3


def trace_link(service: str) -> dict[str, Any]:
    """A data link to the Jaeger traces of `service` slower than the clicked value, in Explore."""
    pane = {
        "datasource": JAEGER["uid"],
        "queries": [
            {
                "refId": "A",
                "datasource": JAEGER,
                "queryType": "search",
                "service": f"outrigger-{service}",
                "minDuration": "${__value.raw}s",
            }
        ],
        "range": {"from": "${__from}", "to": "${__to}"},
    }
    panes = json.dumps({"traces": pane}, separators=(",", ":"))
    return {"title": f"Traces of {service} slower than this", "url": f"/explore?panes={panes}"}


def _panel(panel: Panel, panel_id: int, x: int, y: int, width: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.traces_of:
        defaults["links"] = [trace_link(panel.traces_of)]
    if not panel.stat:
        defaults["custom"] = {"fillOpacity": 10, "showPoints": "never"}
    return {
        "id": panel_id,
        "type": "stat" if panel.stat else "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": PROMETHEUS,
        "gridPos": {"h": HEIGHT, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": (
            {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
            if panel.stat
            else {"legend": {"displayMode": "list", "placement": "bottom"}}
        ),
        "targets": [_target(panel, index, query) for index, query in enumerate(panel.queries)],
    }


def _target(panel: Panel, index: int, query: Query) -> dict[str, Any]:
    target = {
        "refId": chr(ord("A") + index),
        "datasource": PROMETHEUS,
        "expr": query.expr,
        "legendFormat": query.legend,
    }
    if panel.traces_of and "_bucket{" in query.expr:
        # the trace ids the services attach to histogram buckets, each a link to Jaeger (the
        # Prometheus data source's exemplarTraceIdDestinations); Prometheus keeps them on raw
        # `_bucket` series only, not on recorded ones
        target["exemplar"] = True
    return target


def render(dashboard: Dashboard) -> str:
    panels: list[dict[str, Any]] = []
    y = 0
    for row in dashboard.rows:
        panels.append(
            {
                "id": len(panels) + 1,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y},
                "panels": [],
            }
        )
        y += 1
        per_line = len(row.panels) if len(row.panels) <= 4 else PER_LINE
        width = WIDTH // per_line
        for index, panel in enumerate(row.panels):
            line, column = divmod(index, per_line)
            panels.append(_panel(panel, len(panels) + 1, column * width, y + line * HEIGHT, width))
        y += HEIGHT * -(-len(row.panels) // per_line)
    model = {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["outrigger"],
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "title": "Outrigger",
                "tags": ["outrigger"],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "panels": panels,
    }
    return json.dumps(model, indent=2) + "\n"
