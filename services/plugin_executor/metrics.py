"""The plugin executor's metrics (prefix `outrigger_plugins_`), next to the kit's RED metrics
per route.

Runs are counted by the use cases, once per run, with how it ended (jobs too: they run through
the same use case); the pool keeps its gauges (`queue_depth`, `pool_workers`, `pool_busy`); the
app sets `sandbox_feature` once the sandbox has probed the host. Jobs add their own: submitted,
in flight in this replica's consumer, given back to the queue (and why), and the writes of their
state the cache service did not take. The `plugin` label takes the names of loaded plugins
only, and at most `MAX_PLUGIN_LABELS` of them over a process's life (reloads may bring new
names); beyond, runs are counted under `other` (the kit's `BoundedLabel`).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

from outrigger.telemetry import BoundedLabel

MAX_PLUGIN_LABELS: Final = 200
plugin_label: Final = BoundedLabel(MAX_PLUGIN_LABELS)

RUNS: Final = Counter(
    "outrigger_plugins_runs_total",
    "Runs by plugin, version and how they ended (ok, error, timeout, cpu_limit, memory_limit, "
    "output_limit, killed, invalid_input, invalid_output, sandbox_violation).",
    ["plugin", "version", "reason"],
)
RUN_WALL_SECONDS: Final = Histogram(
    "outrigger_plugins_run_wall_seconds",
    "Wall-clock time of a run in the sandbox, from the fork to the result.",
    ["plugin", "version"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RUN_CPU_SECONDS: Final = Histogram(
    "outrigger_plugins_run_cpu_seconds",
    "CPU time (user and system) a run used.",
    ["plugin", "version"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RUN_MAX_RSS_BYTES: Final = Histogram(
    "outrigger_plugins_run_max_rss_bytes",
    "Peak resident memory of a run's process.",
    ["plugin", "version"],
    buckets=tuple(float(mib * 1024 * 1024) for mib in (16, 32, 64, 128, 256, 512, 1024, 2048)),
)
QUEUE_DEPTH: Final = Gauge(
    "outrigger_plugins_queue_depth", "Runs waiting for a free worker of the pool."
)
POOL_WORKERS: Final = Gauge("outrigger_plugins_pool_workers", "Workers of the pool alive.")
POOL_BUSY: Final = Gauge("outrigger_plugins_pool_busy", "Workers of the pool running a job now.")
SANDBOX_FEATURE: Final = Gauge(
    "outrigger_plugins_sandbox_feature",
    "1 for each sandbox layer the host offers and runs get, 0 for each it lacks.",
    ["feature"],
)
PLUGINS_LOADED: Final = Gauge(
    "outrigger_plugins_loaded", "Plugins loaded by the last scan of the plugin folder."
)
PLUGIN_PROBLEMS: Final = Gauge(
    "outrigger_plugins_problems",
    "Folders of the plugin folder the last scan could not load (GET /v1/plugins says why).",
)
JOBS_SUBMITTED: Final = Counter(
    "outrigger_plugins_jobs_submitted_total",
    "Jobs accepted over HTTP and sent to the jobs queue (a replayed Idempotency-Key not counted).",
)
JOBS_IN_FLIGHT: Final = Gauge(
    "outrigger_plugins_jobs_in_flight",
    "Jobs this replica's consumer has taken from the queue and not yet settled (its share of "
    "the queue depth; the broker's own gauges count what still waits).",
)
JOBS_REQUEUED: Final = Counter(
    "outrigger_plugins_jobs_requeued_total",
    "Jobs given back to the queue: the sandbox could not take them, their result could not be "
    "published, or the service stopped during their run.",
    ["why"],
)
JOB_STORE_FAILURES: Final = Counter(
    "outrigger_plugins_job_store_failures_total",
    "Writes of jobs' state the cache service did not take (the jobs ran and their results "
    "were published all the same).",
    ["operation"],
)
