"""`python -m deploy.generate [--check]`: writes the per-service deployment files, or (with
`--check`) lists those that differ from what `deploy/generate/platform.py` says and exits 1."""

from __future__ import annotations

import sys
from pathlib import Path

from deploy.generate import grafana, kubernetes, panels, regions
from deploy.generate.platform import DEPLOYED

ROOT = Path(__file__).resolve().parents[2]
SERVICES_DIR = "deploy/k8s/base/services"
DASHBOARDS_DIR = "grafana/dashboards"

REGIONS = {  # file: [(region, body)]
    "docker-compose.yml": [("services", regions.compose_services)],
    "docker-compose.observability.yml": [("services", regions.compose_tracing)],
    "prometheus/prometheus.yml": [("services", regions.scrape_targets)],
    "deploy/k8s/base/kustomization.yaml": [
        ("services", regions.kustomize_resources),
        ("settings", regions.config_map_settings),
    ],
}


def expected(root: Path = ROOT) -> dict[str, str]:
    """Every generated file's path (relative to the repository) and content."""
    files = {
        f"{SERVICES_DIR}/{service.name}.yaml": kubernetes.render(service) for service in DEPLOYED
    }
    for dashboard in panels.dashboards():
        name = dashboard.uid.removeprefix("outrigger-")
        files[f"{DASHBOARDS_DIR}/{name}.json"] = grafana.render(dashboard)
    for path, parts in REGIONS.items():
        text = (root / path).read_text()
        for region, body in parts:
            text = regions.replace(text, region, body())
        files[path] = text
    return files


def leftovers(files: dict[str, str], root: Path = ROOT) -> list[str]:
    """Generated files of services that are no longer deployed."""
    found = [*root.glob(f"{SERVICES_DIR}/*.yaml"), *root.glob(f"{DASHBOARDS_DIR}/*.json")]
    return sorted(path for path in (str(p.relative_to(root)) for p in found) if path not in files)


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print("usage: python -m deploy.generate [--check]", file=sys.stderr)
        return 2
    files = expected()
    stale = [path for path, text in files.items() if _read(ROOT / path) != text]
    extra = leftovers(files)
    if check:
        for path in stale:
            print(f"out of date: {path}")
        for path in extra:
            print(f"no longer generated: {path}")
        if stale or extra:
            print("run: .venv/bin/python -m deploy.generate", file=sys.stderr)
            return 1
        return 0
    for path in stale:
        (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / path).write_text(files[path])
        print(f"wrote {path}")
    for path in extra:
        (ROOT / path).unlink()
        print(f"removed {path}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
