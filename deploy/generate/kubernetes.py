"""The Kubernetes objects of one deployed service, for `deploy/k8s/base/services/<name>.yaml`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from deploy.generate.platform import DEPLOYED, PRE_STOP_SECONDS
from outrigger import __version__, catalog

if TYPE_CHECKING:
    from deploy.generate.platform import Deployed

USER_ID = 10001  # the image's outrigger user
SECRETS_DIR = "/run/secrets/outrigger"  # OUTRIGGER_SECRETS_DIR in the ConfigMap
DATA_DIR = "/var/lib/outrigger"
DRAIN_MARGIN_SECONDS = 5  # closing pools and flushing the last spans after the drain
MONITORING_NAMESPACE = "monitoring"
OBSERVABILITY_NAMESPACE = "observability"  # where the OTLP collector (Jaeger) listens
OTLP_PORT = 4318
CLIENT_LABEL = "outrigger/client"  # namespaces and pods allowed to call the services
# the namespace of the ingress controller through which browsers reach a public service
INGRESS_LABEL = "outrigger/ingress"
CPU_UTILIZATION = 70


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "outrigger"}


def labels(name: str, component: str = "service") -> dict[str, str]:
    return {
        **selector(name),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/version": __version__,
    }


def _meta(name: str) -> dict[str, Any]:
    return {"name": name, "labels": labels(name)}


def container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": USER_ID,
        "runAsGroup": USER_ID,
        "fsGroup": USER_ID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def scratch_volumes(service: Deployed) -> list[dict[str, Any]]:
    """/tmp and the data dir as emptyDirs (the root file system is read-only), and the secrets.
    A sandbox's /tmp and its runs' work folders are in memory (counted in the memory limit,
    gone with the pod), each capped."""
    sandbox = service.sandbox
    tmp: dict[str, Any] = {"sizeLimit": "64Mi"}
    scratch: list[dict[str, Any]] = []
    if sandbox is not None:
        tmp = {"medium": "Memory", "sizeLimit": f"{sandbox.tmp_mib}Mi"}
        scratch = [
            {"name": "work", "emptyDir": {"medium": "Memory", "sizeLimit": f"{sandbox.work_mib}Mi"}}
        ]
    return [
        {"name": "tmp", "emptyDir": tmp},
        {"name": "data", "emptyDir": {"sizeLimit": "64Mi"}},
        *scratch,
        {
            "name": "secrets",
            "secret": {
                "secretName": "outrigger",
                "defaultMode": 0o440,
                "items": [{"key": key, "path": key} for key in service.secrets],
            },
        },
    ]


def mounts(service: Deployed) -> list[dict[str, Any]]:
    sandbox = service.sandbox
    work = [] if sandbox is None else [{"name": "work", "mountPath": sandbox.work_dir}]
    return [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "data", "mountPath": DATA_DIR},
        *work,
        {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True},
    ]


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def deployment(service: Deployed) -> dict[str, Any]:
    name = service.name
    container = {
        "name": name,
        "image": "outrigger",
        "args": [name],
        "ports": [{"name": "http", "containerPort": service.port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": "outrigger"}}],
        "resources": {
            "requests": {"cpu": service.cpu_request, "memory": service.memory_request},
            "limits": {"cpu": service.cpu_limit, "memory": service.memory_limit},
        },
        "startupProbe": _probe("/healthz", 2, 30),
        "readinessProbe": _probe("/readyz", 5, 2),
        "livenessProbe": _probe("/healthz", 10, 3),
        # endpoints stop sending traffic before uvicorn stops accepting it
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}},
        "securityContext": container_security(),
        "volumeMounts": mounts(service),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name),
        "spec": {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": PRE_STOP_SECONDS
                    + service.drain_seconds
                    + DRAIN_MARGIN_SECONDS,
                    "securityContext": pod_security(),
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": key,
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector(name)},
                        }
                        for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
                    ],
                    "containers": [container],
                    "volumes": scratch_volumes(service),
                },
            },
        },
    }


def network_policy(service: Deployed) -> dict[str, Any]:
    """Callers: client namespaces and pods, and Prometheus. Callees: its backends and OTLP."""
    egress = [
        {
            "to": [
                {
                    "namespaceSelector": {},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": backend.k8s_name}},
                }
            ],
            "ports": [{"port": backend.port, "protocol": "TCP"}],
        }
        for backend in service.backends
    ]
    egress += [
        {
            "to": [{"podSelector": {"matchLabels": selector(callee)}}],
            "ports": [{"port": catalog.service(callee).port, "protocol": "TCP"}],
        }
        for callee in service.calls
    ]
    egress.append(
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": OBSERVABILITY_NAMESPACE}
                    }
                }
            ],
            "ports": [{"port": OTLP_PORT, "protocol": "TCP"}],
        }
    )
    http = [{"port": "http", "protocol": "TCP"}]
    callers: list[dict[str, Any]] = [
        {"namespaceSelector": {"matchLabels": {CLIENT_LABEL: "true"}}},
        {"podSelector": {"matchLabels": {CLIENT_LABEL: "true"}}},
    ]
    callers += [  # the services that call it (`calls`), from its namespace
        {"podSelector": {"matchLabels": selector(caller.name)}}
        for caller in DEPLOYED
        if service.name in caller.calls
    ]
    if service.public:
        callers += [
            {"podSelector": {}},  # any pod of its namespace
            {"namespaceSelector": {"matchLabels": {INGRESS_LABEL: "true"}}},
        ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(service.name),
        "spec": {
            "podSelector": {"matchLabels": selector(service.name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": callers, "ports": http},
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}
                            }
                        }
                    ],
                    "ports": http,
                },
            ],
            "egress": egress,
        },
    }


def autoscaler(service: Deployed) -> dict[str, Any]:
    """Scales on CPU and on the service's own per-pod metrics (served by the custom metrics API),
    whichever asks for more pods; down by one pod a minute at most, after 5 quiet minutes."""
    metrics: list[dict[str, Any]] = [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": metric.name},
                "target": {"type": "AverageValue", "averageValue": metric.average},
            },
        }
        for metric in service.scale_on
    ]
    metrics.append(
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": CPU_UTILIZATION},
            },
        }
    )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(service.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name},
            "minReplicas": 2,
            "maxReplicas": 6,
            "metrics": metrics,
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                }
            },
        },
    }


def objects(service: Deployed) -> list[dict[str, Any]]:
    name = service.name
    match = {"matchLabels": selector(name)}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(name),
            "automountServiceAccountToken": False,
        },
        deployment(service),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(name),
            "spec": {
                "type": "ClusterIP",
                "selector": selector(name),
                "ports": [
                    {
                        "name": "http",
                        "port": service.port,
                        "targetPort": "http",
                        "protocol": "TCP",
                        "appProtocol": "http",
                    }
                ],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _meta(name),
            "spec": {"maxUnavailable": 1, "selector": match},
        },
        autoscaler(service),
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": _meta(name),
            "spec": {
                # job="outrigger" and a service label, as in prometheus/prometheus.yml
                "jobLabel": "app.kubernetes.io/part-of",
                "selector": match,
                "endpoints": [
                    {
                        "port": "http",
                        "path": "/metrics",
                        "interval": "15s",
                        "scrapeTimeout": "10s",
                        "honorLabels": True,
                        "relabelings": [
                            {
                                "sourceLabels": [
                                    "__meta_kubernetes_service_label_app_kubernetes_io_name"
                                ],
                                "targetLabel": "service",
                            }
                        ],
                    }
                ],
            },
        },
        network_policy(service),
    ]


def render(service: Deployed) -> str:
    header = (
        f"# The {service.name} service. Generated by `python -m deploy.generate` from "
        "deploy/generate/platform.py: edit there.\n"
    )
    notes = notes_of(service)
    documents = [
        notes.get(document["kind"], "")
        + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
        for document in objects(service)
    ]
    return header + "---\n" + "---\n".join(documents)


SANDBOX_NOTES = {
    "Deployment": """\
# Restricted Pod Security (the namespace enforces it): non-root, no privilege escalation, every
# capability dropped, seccomp RuntimeDefault, a read-only root. The runtime's default seccomp
# profile allows seccomp(), prctl() and the three landlock_* calls (Docker since 23.0,
# containerd since 1.6, CRI-O): with no_new_privs, which each run sets, the sandbox stacks its
# own filter and Landlock ruleset under it. Runs' folders and /tmp are in memory, capped; the
# grace period lets the longest run (OUTRIGGER_PLUGINS_MAX_WALL_SECONDS) finish after the drain.
""",
    "NetworkPolicy": """\
# The outer wall. Runs have no network of their own (seccomp refuses every socket but AF_UNIX,
# Landlock ABI 4+ refuses TCP), and should one get through, this pod-level rule still holds:
# in, only the HTTP port from clients and Prometheus; out, only RabbitMQ, the cache service,
# DNS (allow-dns) and the OTLP collector, which are the service's own connections. Nothing
# else of the cluster, the node or the internet is reachable from this pod.
""",
}


def notes_of(service: Deployed) -> dict[str, str]:
    """Comments above some of a service's objects, by kind: why they are as they are."""
    return SANDBOX_NOTES if service.sandbox is not None else {}
