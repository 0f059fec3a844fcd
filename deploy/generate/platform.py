"""The one list of deployed services and the backends they reach.

Adding a service to the deployment is one entry in `DEPLOYED`, then
`.venv/bin/python -m deploy.generate`: its compose block, scrape target, Kubernetes objects and
dashboards follow. Ports come from `outrigger.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass

from outrigger import catalog


@dataclass(frozen=True)
class Backend:
    name: str
    setting: str  # the OUTRIGGER_* variable (and secret file) holding its URL
    port: int
    k8s_name: str  # the app.kubernetes.io/name its pods carry


POSTGRES = Backend("postgres", "OUTRIGGER_DATABASE_URL", 5432, "postgresql")
REDIS = Backend("redis", "OUTRIGGER_REDIS_URL", 6379, "redis")
RABBITMQ = Backend("rabbitmq", "OUTRIGGER_AMQP_URL", 5672, "rabbitmq")

# Every service verifies tokens and may encrypt fields; production refuses to start without them.
COMMON_SECRETS = ("OUTRIGGER_JWT_SECRET", "OUTRIGGER_STEALTH_KEYS")


@dataclass(frozen=True)
class Queue:
    name: str
    fed_by: str  # the service whose events fill it


@dataclass(frozen=True)
class Setting:
    """One of a service's own settings (`OUTRIGGER_<SERVICE>_*`) with the value the deployment
    gives it: a literal of the `outrigger` ConfigMap, and in compose a variable `.env` may set."""

    name: str
    value: str
    note: str = ""  # a comment beside it, saying what it does


@dataclass(frozen=True)
class PodsMetric:
    """A per-pod metric the HorizontalPodAutoscaler scales on, beside CPU: the average over the
    service's pods it keeps each pod near. The cluster serves it through the custom metrics API
    (prometheus-adapter, see deploy/README.md)."""

    name: str
    average: str


@dataclass(frozen=True)
class Sandbox:
    """What the container of a service that runs untrusted code (the plugin executor's runs, in
    processes of its own) gives those runs, beside the root file system every service has
    read-only: the runs' work folders and /tmp in memory (a tmpfs in compose, an emptyDir of
    medium Memory on Kubernetes, each capped, and counted in the memory limit), a process
    ceiling for the whole container, the plugins mounted read-only, and a stop that lets the
    longest run finish. The sandbox's own layers (rlimits, Landlock, seccomp) sit inside."""

    work_dir: str  # OUTRIGGER_PLUGINS_WORK_DIR
    work_mib: int
    tmp_mib: int
    pids: int  # processes and threads of the container at most: a fork bomb's ceiling
    longest_run_seconds: int  # OUTRIGGER_PLUGINS_MAX_WALL_SECONDS
    plugin_dir: str = "/app/plugins"  # OUTRIGGER_PLUGIN_DIR in the image


@dataclass(frozen=True)
class Deployed:
    name: str
    backends: tuple[Backend, ...]
    queues: tuple[Queue, ...] = ()
    # secrets of its own beside its backends' URLs and COMMON_SECRETS: compose requires them from
    # .env, Kubernetes mounts them from the Secret `outrigger`; never in the repository
    own_secrets: tuple[str, ...] = ()
    settings: tuple[Setting, ...] = ()
    cpu_request: str = "100m"
    memory_request: str = "128Mi"
    memory_limit: str = "512Mi"
    cpu_limit: str = "1"
    scale_on: tuple[PodsMetric, ...] = ()  # besides CPU
    # browsers reach it (through the cluster's ingress controller), not only labelled clients
    public: bool = False
    open_files: int | None = None  # a connection is a file: compose raises its `nofile` to this
    # other services it calls over HTTP: its NetworkPolicy lets it reach them, theirs admits it
    calls: tuple[str, ...] = ()
    sandbox: Sandbox | None = None  # it runs untrusted code (see Sandbox)

    @property
    def info(self) -> catalog.ServiceInfo:
        return catalog.service(self.name)

    @property
    def port(self) -> int:
        return self.info.port

    @property
    def drain_seconds(self) -> int:
        """What a stop may take after the preStop pause: the requests in flight, then the
        longest run the service lets finish (its wall-clock ceiling)."""
        return SHUTDOWN_GRACE_SECONDS + (self.sandbox.longest_run_seconds if self.sandbox else 0)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (
            tuple(backend.setting for backend in self.backends) + COMMON_SECRETS + self.own_secrets
        )


# The plugin executor's runs share the service's uid in a container (no root, so no uid of their
# own): Landlock is what keeps a run from the service's files, its secrets and /proc, so the
# deployment refuses to start without it (the abuse suite's container level assumes it too).
PLUGIN_REQUIRED_FEATURES = ("rlimits", "session", "seccomp", "landlock")
PLUGIN_POOL_SIZE = 2
PLUGIN_MAX_MEMORY_MIB = 512
PLUGIN_SANDBOX = Sandbox(
    work_dir="/run/outrigger-plugins",
    work_mib=256,
    tmp_mib=64,
    pids=256,
    longest_run_seconds=300,
)
# What one run's work folder may hold: the in-memory work folder shared by every worker's run,
# less a quarter for what a run writes in the 0.1 s before the check sees it.
PLUGIN_DISK_MIB = PLUGIN_SANDBOX.work_mib * 3 // 4 // PLUGIN_POOL_SIZE

DEPLOYED: tuple[Deployed, ...] = (
    Deployed(
        "audit",
        (POSTGRES, RABBITMQ),
        # every service's audit records; the event store's reveals are what the live test sends
        queues=(Queue("audit.records", fed_by="event-store"),),
        own_secrets=("OUTRIGGER_AUDIT_SIGNING_KEY",),
        settings=(
            Setting(
                "OUTRIGGER_AUDIT_ORIGIN", "outrigger.audit", "checkpoint origin: <this>/<tenant>"
            ),
            Setting("OUTRIGGER_AUDIT_CHECKPOINT_EVERY", "1000", "records between checkpoints"),
            Setting("OUTRIGGER_AUDIT_CHECKPOINT_SECONDS", "10", "or seconds, for a tree that grew"),
            Setting("OUTRIGGER_AUDIT_RETENTION_MONTHS", "0", "0 keeps every record forever"),
        ),
        cpu_request="250m",
        memory_request="256Mi",
    ),
    Deployed("event-store", (POSTGRES, RABBITMQ), cpu_request="250m", memory_request="256Mi"),
    Deployed(
        "cache",
        (REDIS, RABBITMQ),
        queues=(Queue("cache.invalidations", fed_by="event-store"),),
    ),
    Deployed(
        "notifications",
        (REDIS, RABBITMQ),
        # outrigger.notifications, and the event store's events with INGEST_EVENTS (below)
        queues=(Queue("notifications.ingest", fed_by="event-store"),),
        settings=(
            Setting(
                "OUTRIGGER_NOTIFICATIONS_INGEST_EVENTS",
                "true",
                "events to streams.<id> and categories.<c>",
            ),
            Setting(
                "OUTRIGGER_NOTIFICATIONS_HISTORY_MAX_LENGTH", "1000", "messages kept per channel"
            ),
            Setting(
                "OUTRIGGER_NOTIFICATIONS_HISTORY_MAX_AGE_SECONDS", "86400", "for at most a day"
            ),
            Setting(
                "OUTRIGGER_NOTIFICATIONS_SLOW_CONSUMER_POLICY",
                "disconnect",
                "or drop-oldest: when a queue is full",
            ),
            Setting("OUTRIGGER_NOTIFICATIONS_QUEUE_SIZE", "1000", "frames per subscriber"),
            Setting("OUTRIGGER_NOTIFICATIONS_HEARTBEAT_SECONDS", "15", "below proxies' idle cut"),
        ),
        cpu_request="250m",
        memory_request="256Mi",
        memory_limit="1Gi",  # about 25 KB per subscriber: 20,000 connections at most
        scale_on=(PodsMetric("outrigger_notifications_connections", "5000"),),
        public=True,
        open_files=65536,
    ),
    Deployed(
        "plugin-executor",
        (RABBITMQ,),
        settings=(
            Setting(
                "OUTRIGGER_PLUGINS_REQUIRED_FEATURES",
                ",".join(PLUGIN_REQUIRED_FEATURES),
                "no start without them: runs share the service's uid here",
            ),
            Setting(
                "OUTRIGGER_CACHE_URL",
                "http://cache:8003",
                "job state in the cache service, so any replica answers GET /v1/jobs/{id}",
            ),
            Setting("OUTRIGGER_PLUGINS_WORK_DIR", PLUGIN_SANDBOX.work_dir, "runs' folders"),
            Setting("OUTRIGGER_PLUGINS_POOL_SIZE", str(PLUGIN_POOL_SIZE), "a run each"),
            Setting(
                "OUTRIGGER_PLUGINS_DISK_MIB",
                str(PLUGIN_DISK_MIB),
                "a run's share of the in-memory work folder",
            ),
            Setting(
                "OUTRIGGER_PLUGINS_MAX_MEMORY_MIB",
                str(PLUGIN_MAX_MEMORY_MIB),
                "a run's memory ceiling: the pool's fit in the pod's limit",
            ),
            Setting(
                "OUTRIGGER_PLUGINS_MAX_WALL_SECONDS",
                str(PLUGIN_SANDBOX.longest_run_seconds),
                "a stop waits for the longest run",
            ),
        ),
        cpu_request="500m",
        memory_request="512Mi",
        # the service, then each worker's run at its ceiling, then the in-memory folders
        memory_limit="2Gi",
        cpu_limit=str(PLUGIN_POOL_SIZE),  # a core a worker: runs are CPU-bound, not throttled
        # jobs from its own POST /v1/jobs and from any backend (routing key run.<plugin>)
        queues=(Queue("plugin-executor.jobs", fed_by="plugin-executor"),),
        calls=("cache",),  # job state, through the cache service's HTTP API
        sandbox=PLUGIN_SANDBOX,
    ),
)

# OUTRIGGER_SHUTDOWN_GRACE_SECONDS: how long the requests in flight may take to finish once a pod
# stops (SSE streams end at once, with a `shutdown` event: they do not hold the drain)
SHUTDOWN_GRACE_SECONDS = 10
PRE_STOP_SECONDS = 5  # endpoints stop routing to a terminating pod before it drains


def deployed(name: str) -> Deployed:
    for service in DEPLOYED:
        if service.name == name:
            return service
    raise KeyError(name)


# Who has to be running for a query to return data (the live Prometheus test checks this).
# A service name means that service; these tokens mean a property of the running set.
ANY_SERVICE = "any-service"
ANY_CONSUMER = "any-consumer"  # a running service declares queues
EVENT_FLOW = "event-flow"  # a running consumer and the service feeding its queue
ANY_DATABASE_USER = "any-database-user"


def owners_running(owners: frozenset[str], running: set[str]) -> bool:
    """Whether every owner is satisfied by the running services (names from the catalog)."""
    present = [service for service in DEPLOYED if service.name in running]

    def satisfied(owner: str) -> bool:
        if owner == ANY_SERVICE:
            return bool(present)
        if owner == ANY_CONSUMER:
            return any(service.queues for service in present)
        if owner == EVENT_FLOW:
            return any(queue.fed_by in running for service in present for queue in service.queues)
        if owner == ANY_DATABASE_USER:
            return any(POSTGRES in service.backends for service in present)
        return owner in running

    return all(satisfied(owner) for owner in owners)
