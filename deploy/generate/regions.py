"""The per-service parts of hand-written files, between `# >>> generated: <name>` and
`# <<< generated: <name>` lines, so the rest of each file keeps its comments and layout."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from deploy.generate.kubernetes import DATA_DIR, DRAIN_MARGIN_SECONDS, USER_ID
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
    if service.sandbox is not None:
        lines += compose_sandbox(service)
    lines += [
        "  healthcheck:",
        "    <<: *readiness",
        f'    test: [CMD, python, /app/healthcheck.py, "http://127.0.0.1:{port}/readyz"]',
    ]
    return "\n".join(lines) + "\n"


def compose_sandbox(service: Deployed) -> list[str]:
    """What the container of a service running untrusted code adds to the common hardening
    (read-only root, no capabilities, no-new-privileges): an explicit non-root user, its
    writable folders in memory with sizes, process and memory ceilings, the plugins read-only,
    and a stop that waits for the longest run. The abuse suite's container level is this."""
    sandbox = service.sandbox
    assert sandbox is not None
    user = f"{USER_ID}:{USER_ID}"
    owned = f"uid={USER_ID},gid={USER_ID},mode=0700,noexec,nosuid,nodev"
    return [
        f'  user: "{user}"  # never root: runs take the same uid, Landlock keeps them apart',
        "  tmpfs:  # in memory, counted in mem_limit",
        f"    - /tmp:size={sandbox.tmp_mib}m,mode=1777,noexec,nosuid,nodev",
        f"    - {DATA_DIR}:size=16m,{owned}",
        f"    - {sandbox.work_dir}:size={sandbox.work_mib}m,{owned}",
        f"  pids_limit: {sandbox.pids}  # processes and threads: a fork bomb's ceiling",
        f"  mem_limit: {service.memory_limit.removesuffix('i').lower()}",
        f"  cpus: {service.cpu_limit}",
        f"  stop_grace_period: {service.drain_seconds + DRAIN_MARGIN_SECONDS}s"
        "  # the drain, then the longest run",
        "  volumes:",
        f'    - "${{OUTRIGGER_PLUGINS_HOST_DIR:-./plugins}}:{sandbox.plugin_dir}:ro"',
    ]


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
