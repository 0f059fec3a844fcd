"""The plugin executor's deployment holds its runs' outer walls, so nobody loosens them silently:
compose and Kubernetes run it unprivileged, with in-memory work folders of capped size, process
and memory ceilings and no egress but its own connections; its alerts and dashboard name only
metrics it exports; and the container profile compose gives is the one the abuse suite's
container level emulates, checked for real: the sandbox started as compose starts it (uid
10001, no capability, no_new_privs, no namespaces) offers every layer the deployment requires,
and a run cannot read the service's secrets."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from deploy.generate.kubernetes import USER_ID
from deploy.generate.platform import (
    PLUGIN_MAX_MEMORY_MIB,
    PLUGIN_POOL_SIZE,
    PLUGIN_REQUIRED_FEATURES,
    deployed,
)
from services.plugin_executor import metrics
from services.plugin_executor.domain.models import Feature
from tests.deploy.support import REPO, env_example, load, render, run, tool
from tests.deploy.test_compose import BASE, compose
from tests.deploy.test_kubernetes import of_kind
from tests.plugin_executor.sandbox_support import LEVELS

SERVICE = deployed("plugin-executor")
SANDBOX = SERVICE.sandbox
MIB = {"Mi": 1, "Gi": 1024}


def mib(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * MIB[unit]


@pytest.fixture(scope="module")
def composed() -> Any:
    service: Any = compose(*BASE, env={"PATH": "/usr/bin:/bin", **env_example()})["services"]
    return service["plugin-executor"]


def tmpfs(service: Any) -> dict[str, dict[str, str]]:
    """Each tmpfs mount's options, by path."""
    mounts = {}
    for entry in service["tmpfs"]:
        path, _, options = entry.partition(":")
        mounts[path] = dict(
            [*option.split("=", 1), ""][:2] for option in options.split(",") if option
        )
    return mounts


def test_compose_runs_it_unprivileged(composed: Any) -> None:
    assert SANDBOX is not None
    assert composed["user"] == f"{USER_ID}:{USER_ID}"
    assert composed["read_only"] is True
    assert composed["cap_drop"] == ["ALL"]
    assert "cap_add" not in composed
    assert not composed.get("privileged")
    assert composed["security_opt"] == ["no-new-privileges:true"]  # no seccomp=unconfined
    for shared in ("userns_mode", "pid", "ipc", "network_mode"):  # the host's: never
        assert shared not in composed
    assert composed["pids_limit"] == SANDBOX.pids <= 1024
    assert composed["mem_limit"] == SERVICE.memory_limit.removesuffix("i").lower()
    assert float(composed["cpus"]) == PLUGIN_POOL_SIZE  # a core a worker
    env = composed["environment"]
    mounts = tmpfs(composed)
    assert mounts["/tmp"]["size"] == f"{SANDBOX.tmp_mib}m"
    work = mounts[env["OUTRIGGER_PLUGINS_WORK_DIR"]]
    assert work["size"] == f"{SANDBOX.work_mib}m"
    assert (work["uid"], work["mode"]) == (str(USER_ID), "0700")
    for options in mounts.values():
        assert {"noexec", "nosuid", "nodev"} <= options.keys()
    [plugins] = composed["volumes"]
    assert plugins.endswith(f":{SANDBOX.plugin_dir}:ro")
    assert set(env["OUTRIGGER_PLUGINS_REQUIRED_FEATURES"].split(",")) == set(
        PLUGIN_REQUIRED_FEATURES
    )


def test_the_abuse_suites_container_level_is_what_compose_gives() -> None:
    """The container level: workers start as one plain uid (which leaves them no capability)
    and get no namespaces (Docker's default seccomp profile refuses unshare and clone's
    namespace flags without CAP_SYS_ADMIN, which cap_drop ALL removes). The deployment requires
    only layers that level has, so what the suite proves there holds in the container."""
    [container] = [level for level in LEVELS if level.name == "container"]
    assert container.unprivileged
    assert container.disabled == {Feature.NETWORK_NAMESPACE}
    required = {Feature(name) for name in PLUGIN_REQUIRED_FEATURES}
    assert Feature.LANDLOCK in required  # runs share the service's uid: Landlock parts them
    assert not required & {Feature.NETWORK_NAMESPACE, Feature.SEPARATE_UID}


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_kubernetes_runs_it_restricted_with_in_memory_folders(overlay: str) -> None:
    assert SANDBOX is not None
    rendered = render(overlay)
    [namespace] = of_kind(rendered, "Namespace").values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    spec = of_kind(rendered, "Deployment")["plugin-executor"]["spec"]["template"]["spec"]
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    for shared in ("hostPID", "hostNetwork", "hostIPC"):
        assert shared not in spec
    [container] = spec["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    mounted = {mount["mountPath"]: volumes[mount["name"]] for mount in container["volumeMounts"]}
    settings = next(o for o in rendered if o["kind"] == "ConfigMap")["data"]
    for path, size in ((settings["OUTRIGGER_PLUGINS_WORK_DIR"], SANDBOX.work_mib), ("/tmp", 64)):
        assert mounted[path]["emptyDir"] == {"medium": "Memory", "sizeLimit": f"{size}Mi"}
    # the service, then each worker's run at its ceiling, then the in-memory folders
    limit = mib(container["resources"]["limits"]["memory"])
    request = mib(container["resources"]["requests"]["memory"])
    in_memory = SANDBOX.work_mib + SANDBOX.tmp_mib
    assert request + PLUGIN_POOL_SIZE * PLUGIN_MAX_MEMORY_MIB + in_memory <= limit
    assert int(settings["OUTRIGGER_PLUGINS_MAX_MEMORY_MIB"]) == PLUGIN_MAX_MEMORY_MIB
    assert int(settings["OUTRIGGER_PLUGINS_POOL_SIZE"]) == PLUGIN_POOL_SIZE
    # every worker's run may fill its work folder to its budget: together they fit the volume
    disk = int(settings["OUTRIGGER_PLUGINS_DISK_MIB"])
    assert PLUGIN_POOL_SIZE * disk <= SANDBOX.work_mib
    assert int(container["resources"]["limits"]["cpu"]) >= PLUGIN_POOL_SIZE  # a core a worker
    pdb = of_kind(rendered, "PodDisruptionBudget")["plugin-executor"]
    assert pdb["spec"]["maxUnavailable"] == 1


def test_the_pods_egress_is_only_its_own_connections() -> None:
    rendered = render("prod")
    policy = of_kind(rendered, "NetworkPolicy")["plugin-executor"]["spec"]
    reached = set()
    for rule in policy["egress"]:
        [peer] = rule["to"]
        [port] = rule["ports"]
        name = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
        namespace = peer.get("namespaceSelector", {}).get("matchLabels", {})
        reached.add((name or namespace.get("kubernetes.io/metadata.name"), port["port"]))
    assert reached == {("rabbitmq", 5672), ("cache", 8003), ("observability", 4318)}
    text = (REPO / "deploy/k8s/base/services/plugin-executor.yaml").read_text()
    note = text.split("kind: NetworkPolicy")[0].rsplit("---", 1)[1]
    assert "The outer wall" in note


def exported() -> set[str]:
    """Every series name services/plugin_executor/metrics.py exports."""
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for metric in value.describe():
                suffixes = {
                    "counter": ("_total",),
                    "histogram": ("_bucket", "_count", "_sum"),
                }.get(metric.type, ("",))
                names |= {metric.name + suffix for suffix in suffixes}
    return names


def test_alerts_and_dashboards_name_only_metrics_it_exports() -> None:
    texts = [
        (REPO / "prometheus/rules/plugin-executor.yml").read_text(),
        (REPO / "grafana/dashboards/plugin-executor.json").read_text(),
    ]
    used = {name for text in texts for name in re.findall(r"outrigger_plugins_[a-z_]+", text)}
    assert used
    assert used <= exported(), used - exported()


def test_the_alerts_minimum_is_the_deployments() -> None:
    [rule] = [
        rule
        for group in load("prometheus/rules/plugin-executor.yml")["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "PluginSandboxBelowMinimum"
    ]
    features = re.search(r'feature=~"([a-z_|]+)"', rule["expr"])
    assert features is not None
    assert set(features.group(1).split("|")) == set(PLUGIN_REQUIRED_FEATURES)
    assert {feature.value for feature in Feature} >= set(PLUGIN_REQUIRED_FEATURES)


PROFILE = """
import asyncio, json, os, sys, tempfile
from pathlib import Path
from services.plugin_executor.adapters.pool import WorkerPool
from services.plugin_executor.domain.models import Feature
from tests.plugin_executor.sandbox_support import plugin

async def main():
    required = {Feature(name) for name in sys.argv[1].split(",")}
    root = Path(tempfile.mkdtemp(prefix="outrigger-profile-"))
    pool = WorkerPool(
        work_dir=root / "work", size=1, required=required, disabled={Feature.NETWORK_NAMESPACE}
    )
    read, env = plugin("abuse", "read_file"), plugin("abuse", "environment")
    pool.load([read, env])
    await pool.start()  # SandboxUnavailable below the minimum
    try:
        secret = await pool.run(read, {"path": f"/proc/{os.getpid()}/environ"}, read.limits)
        environment = await pool.run(env, {}, env.limits)
    finally:
        await pool.close()
    print(json.dumps({
        "status": open("/proc/self/status").read(),
        "active": sorted(feature.value for feature in pool.features().active),
        "secret": [secret.reason.value, secret.result],
        "environment": [environment.reason.value, environment.result],
    }))

asyncio.run(main())
"""


def interpreter() -> tuple[str, str]:
    """This interpreter, or the same Python version elsewhere when uid 10001 cannot reach this
    one (a prefix under a private home, as pyenv's in /root): the image's is /usr/local/bin,
    open to all. With the path of this environment's packages."""
    packages = sysconfig.get_paths()["purelib"]
    path = Path(os.path.realpath(sys.executable))
    if all(parent.stat().st_mode & 0o001 for parent in path.parents):
        return sys.executable, packages
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = shutil.which(version, path="/usr/local/bin:/usr/bin")
    if found is None:
        pytest.fail(f"uid {USER_ID} cannot reach {path} and there is no {version} it can")
    return found, packages


def test_the_sandbox_started_as_compose_starts_it_has_the_required_layers() -> None:
    """uid 10001 with no capability at all and no_new_privs, as `user`, `cap_drop: [ALL]` and
    `no-new-privileges` make the container's processes (the namespaces Docker refuses are
    disabled). Needs root to become that user, as the abuse suite does."""
    if os.geteuid() != 0:
        pytest.fail("run tests/deploy as root: this test becomes uid 10001 with setpriv")
    canary = "outrigger-profile-canary-secret"
    python, packages = interpreter()
    result = run(
        tool("setpriv"),
        f"--reuid={USER_ID}",
        f"--regid={USER_ID}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        python,
        "-c",
        PROFILE,
        ",".join(PLUGIN_REQUIRED_FEATURES),
        cwd="/",
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": f"{REPO}:{packages}",
            "OUTRIGGER_JWT_SECRET": canary,  # the service's secret, in its environment
        },
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    status = dict(line.split(":\t", 1) for line in found["status"].splitlines())
    assert status["Uid"].split()[0] == str(USER_ID)
    assert status["CapEff"] == status["CapBnd"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1"
    assert set(PLUGIN_REQUIRED_FEATURES) <= set(found["active"])
    assert found["secret"] == ["sandbox_violation", None]  # Landlock: the service's /proc
    assert found["environment"] == ["ok", {"environment": {}}]
    assert canary not in result.stdout
