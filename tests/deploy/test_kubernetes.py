"""Every overlay renders with kustomize; every object validates against the Kubernetes schemas
(kubernetes-validate, strict: unknown fields are errors); the security and operations settings
the platform promises hold in the rendered output."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from deploy.generate.kubernetes import CLIENT_LABEL, INGRESS_LABEL, OTLP_PORT
from deploy.generate.platform import COMMON_SECRETS, DEPLOYED
from outrigger import catalog
from tests.deploy.support import render

OVERLAYS = ["dev", "prod"]
KUBERNETES_VERSIONS = ["1.28", "1.33"]  # the oldest and a recent minor we support
OPERATOR_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

# kubernetes-validate knows the core API only; this covers the ServiceMonitor fields we use
# (prometheus-operator's CRD, monitoring.coreos.com/v1), unknown ones being errors.
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": r"^\d+[smh]$"},
                            "scrapeTimeout": {"type": "string", "pattern": r"^\d+[smh]$"},
                            "honorLabels": {"type": "boolean"},
                            "relabelings": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "sourceLabels": {
                                            "type": "array",
                                            "items": {
                                                "type": "string",
                                                "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$",
                                            },
                                        },
                                        "targetLabel": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def config_map(objects: list[dict[str, Any]]) -> dict[str, str]:
    [found] = [o for o in objects if o["kind"] == "ConfigMap"]
    data: dict[str, str] = found["data"]
    return data


def validate(document: dict[str, Any], version: str) -> None:
    if (document["apiVersion"], document["kind"]) in OPERATOR_KINDS:
        jsonschema.validate(document, SERVICE_MONITOR)
    else:
        kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates(rendered: list[dict[str, Any]], version: str) -> None:
    for document in rendered:
        try:
            validate(document, version)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            path = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{document['kind']}/{document['metadata']['name']} {path}: {exc.message}")


def test_the_validation_catches_a_misspelt_field(rendered: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(next(iter(of_kind(rendered, "Deployment").values())))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken, KUBERNETES_VERSIONS[0])
    monitor = copy.deepcopy(next(iter(of_kind(rendered, "ServiceMonitor").values())))
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor, KUBERNETES_VERSIONS[0])


def test_each_service_has_its_objects(rendered: list[dict[str, Any]]) -> None:
    for kind in (
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ServiceMonitor",
        "NetworkPolicy",
        "ServiceAccount",
    ):
        names = of_kind(rendered, kind)
        for service in DEPLOYED:
            assert service.name in names, f"{service.name} has no {kind}"
    assert "outrigger-migrate" in of_kind(rendered, "Job")
    assert of_kind(rendered, "Namespace")


def test_no_secret_value_is_in_the_manifests(rendered: list[dict[str, Any]]) -> None:
    assert not of_kind(rendered, "Secret")
    secret_settings = {s for service in DEPLOYED for s in service.secrets}
    assert not secret_settings & config_map(rendered).keys()
    for spec in pod_specs(rendered).values():
        for container in spec["containers"]:
            assert not secret_settings & {e["name"] for e in container.get("env", [])}


def pod_specs(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    workloads = {**of_kind(rendered, "Deployment"), **of_kind(rendered, "Job")}
    return {name: o["spec"]["template"]["spec"] for name, o in workloads.items()}


def test_pods_run_locked_down(rendered: list[dict[str, Any]]) -> None:
    for name, spec in pod_specs(rendered).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in security["capabilities"], name
            assert security.get("privileged") is False, name
            assert container["resources"]["requests"], name
            assert container["resources"]["limits"], name
            mounted = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/tmp", "/var/lib/outrigger"} <= mounted, f"{name} cannot write anywhere"
            image = container["image"]
            assert ":" in image, f"{name}: {image} has no tag"
            assert not image.endswith(":latest"), f"{name}: {image}"


def test_each_pod_sees_only_the_secrets_it_needs(rendered: list[dict[str, Any]]) -> None:
    specs = pod_specs(rendered)
    for service in DEPLOYED:
        [volume] = [v for v in specs[service.name]["volumes"] if "secret" in v]
        keys = {item["key"] for item in volume["secret"]["items"]}
        own = set(service.own_secrets)  # e.g. the audit signing key, mounted in audit pods only
        assert keys == {b.setting for b in service.backends} | set(COMMON_SECRETS) | own
        assert volume["secret"]["defaultMode"] == 0o440
    [job_secrets] = [v for v in specs["outrigger-migrate"]["volumes"] if "secret" in v]
    assert [item["key"] for item in job_secrets["secret"]["items"]] == ["OUTRIGGER_DATABASE_URL"]
    settings = config_map(rendered)
    assert settings["OUTRIGGER_SECRETS_DIR"] == "/run/secrets/outrigger"


def test_probes_and_the_drain_fit_together(rendered: list[dict[str, Any]]) -> None:
    settings = config_map(rendered)
    grace = float(settings["OUTRIGGER_SHUTDOWN_GRACE_SECONDS"])
    deployments = of_kind(rendered, "Deployment")
    for service in DEPLOYED:
        spec = deployments[service.name]["spec"]["template"]["spec"]
        [container] = spec["containers"]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["startupProbe"]["httpGet"]["path"] in {"/healthz", "/readyz"}
        assert container["ports"] == [
            {"name": "http", "containerPort": service.port, "protocol": "TCP"}
        ]
        pause = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        # SSE streams end at once with a `shutdown` event (outrigger.http.sse): the drain only
        # waits for requests in flight, so a rolling update is not held up by a stopping pod;
        # a sandbox then lets its longest run finish (its wall-clock ceiling)
        run = float(settings["OUTRIGGER_PLUGINS_MAX_WALL_SECONDS"]) if service.sandbox else 0
        assert pause + grace + run + 5 <= spec["terminationGracePeriodSeconds"] <= 30 + run
        assert grace <= 10


def test_scaling_and_disruption_budgets(rendered: list[dict[str, Any]]) -> None:
    for service in DEPLOYED:
        hpa = of_kind(rendered, "HorizontalPodAutoscaler")[service.name]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["name"] == service.name
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        assert "replicas" not in of_kind(rendered, "Deployment")[service.name]["spec"]
        metrics = hpa["spec"]["metrics"]
        assert [m["pods"]["metric"]["name"] for m in metrics if m["type"] == "Pods"] == [
            metric.name for metric in service.scale_on
        ]
        [cpu] = [m["resource"] for m in metrics if m["type"] == "Resource"]
        assert cpu["name"] == "cpu"
        pdb = of_kind(rendered, "PodDisruptionBudget")[service.name]
        assert pdb["spec"]["maxUnavailable"] == 1
        monitor = of_kind(rendered, "ServiceMonitor")[service.name]
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] == "http"
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/part-of"


def test_the_recommended_labels_are_everywhere(rendered: list[dict[str, Any]]) -> None:
    for document in rendered:
        if document["kind"] == "Namespace":
            continue
        labels = document["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "outrigger", document["metadata"]["name"]
        assert labels["app.kubernetes.io/managed-by"] == "kustomize"
        assert labels["app.kubernetes.io/instance"].startswith("outrigger-")
    for name, deployment in of_kind(rendered, "Deployment").items():
        pod = deployment["spec"]["template"]["metadata"]["labels"]
        assert pod["app.kubernetes.io/name"] == name
        assert pod["app.kubernetes.io/version"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod.items()


def test_network_policies_let_each_service_reach_only_what_it_needs(
    rendered: list[dict[str, Any]],
) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny
    dns = policies["allow-dns"]["spec"]["egress"]
    assert {p["port"] for rule in dns for p in rule["ports"]} == {53}
    for service in DEPLOYED:
        spec = policies[service.name]["spec"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == service.name
        reached = {
            (peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"], rule["ports"][0]["port"])
            for rule in spec["egress"]
            for peer in rule["to"]
            if "podSelector" in peer
        }
        called = {(name, catalog.service(name).port) for name in service.calls}
        assert reached == {(b.k8s_name, b.port) for b in service.backends} | called
        others = [
            rule for rule in spec["egress"] if all("podSelector" not in p for p in rule["to"])
        ]
        assert [rule["ports"][0]["port"] for rule in others] == [OTLP_PORT]
        ingress_ports = {p["port"] for rule in spec["ingress"] for p in rule["ports"]}
        assert ingress_ports == {"http"}
        callers = [peer for rule in spec["ingress"] for peer in rule["from"]]
        assert {"podSelector": {"matchLabels": {CLIENT_LABEL: "true"}}} in callers
        # browsers reach a public service through the ingress controller; its namespace's pods
        # may call it too. Any other service admits labelled clients (and Prometheus) only.
        anyone = [
            {"podSelector": {}},
            {"namespaceSelector": {"matchLabels": {INGRESS_LABEL: "true"}}},
        ]
        assert [peer for peer in anyone if peer in callers] == (anyone if service.public else [])
        # a service another calls admits that one's pods, and only those, besides clients
        named = {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for peer in callers
            if "app.kubernetes.io/name" in peer.get("podSelector", {}).get("matchLabels", {})
        }
        assert named == {caller.name for caller in DEPLOYED if service.name in caller.calls}
