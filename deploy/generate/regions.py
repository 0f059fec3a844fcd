"""The per-service parts of hand-written files, between `# >>> generated: <name>` and
`# <<< generated: <name>` lines, so the rest of each file keeps its comments and layout."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from deploy.generate.platform import DEPLOYED, POSTGRES

if TYPE_CHECKING:
    from deploy.generate.platform import Deployed


class RegionMissing(Exception):
    pass


def replace(text: str, name: str, body: str) -> str:
    """`text` with region `name` holding `body`, indented like its opening marker."""
    pattern = re.compile(
        rf"^(?P<indent>[ \t]*)# >>> generated: {re.escape(name)}\n"
        rf".*?^(?P=indent)# <<< generated: {re.escape(name)}\n",
        re.MULTILINE | re.DOTALL,
    )
    match = pattern.search(text)
    if match is None:
        raise RegionMissing(f"no '# >>> generated: {name}' ... '# <<< generated: {name}' lines")
    indent = match["indent"]
    lines = [indent + line if line else line for line in body.splitlines()]
    block = (
        f"{indent}# >>> generated: {name}\n"
        + "".join(line + "\n" for line in lines)
        + f"{indent}# <<< generated: {name}\n"
    )
    return text[: match.start()] + block + text[match.end() :]


def compose_service(service: Deployed) -> str:
    name, port = service.name, service.port
    lines = [
        f"{name}:",
        "  <<: *outrigger",
        f"  command: [{name}]",
        f'  ports: ["{port}:{port}"]',
        "  environment:",
        "    <<: *outrigger-environment",
        *(f"    {backend.setting}: *{backend.name}-url" for backend in service.backends),
        *(f"    {name}: {required(name)}" for name in service.own_secrets),
        *(
            f"    {s.name}: ${{{s.name}:-{s.value}}}" + (f"  # {s.note}" if s.note else "")
            for s in service.settings
        ),
        "  depends_on:",
    ]
    if POSTGRES in service.backends:
        lines.append("    migrate: {condition: service_completed_successfully}")
    lines += [f"    {backend.name}: {{condition: service_healthy}}" for backend in service.backends]
    if service.open_files is not None:
        lines.append(f"  ulimits: {{nofile: {service.open_files}}}  # a connection is a file")
    lines += [
        "  healthcheck:",
        "    <<: *readiness",
        f'    test: [CMD, python, /app/healthcheck.py, "http://127.0.0.1:{port}/readyz"]',
    ]
    return "\n".join(lines) + "\n"


def required(variable: str) -> str:
    """A compose variable that must be set in .env: compose names it and stops otherwise."""
    return f"${{{variable}:?set {variable} in .env (see .env.example)}}"


def compose_services() -> str:
    return "".join(compose_service(service) for service in DEPLOYED)


def compose_tracing() -> str:
    return "".join(f"{service.name}:\n  environment: *tracing\n" for service in DEPLOYED)


def scrape_targets() -> str:
    return "".join(
        f'- targets: ["{service.name}:{service.port}"]\n  labels: {{service: {service.name}}}\n'
        for service in DEPLOYED
    )


def kustomize_resources() -> str:
    return "".join(f"- services/{service.name}.yaml\n" for service in DEPLOYED)


def config_map_settings() -> str:
    """The services' own settings, as literals of the `outrigger` ConfigMap."""
    return "".join(
        f"- {s.name}={s.value}" + (f"  # {s.note}" if s.note else "") + "\n"
        for service in DEPLOYED
        for s in service.settings
    )
