"""What the Grafana dashboards show: rows of panels, each a list of PromQL queries.

Service-specific metric names live here and in `prometheus/rules/<service>.yml`; rename them in
both places. `owners` says who must be running for a query to return data (the live Prometheus
test holds every non-sporadic query to it); `sporadic` queries only show something after an
incident (an eviction, a lost lock), so a quiet platform leaves them empty.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.generate.platform import (
    ANY_CONSUMER,
    ANY_DATABASE_USER,
    DEPLOYED,
    POSTGRES,
    Deployed,
)
from outrigger import catalog

RATE = "$__rate_interval"
NOT_PROBES = 'route!~"/healthz|/readyz|/metrics"'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str
    owners: frozenset[str] = frozenset()
    sporadic: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    traces_of: str | None = None  # the service whose slow traces a data link opens in Jaeger
    stat: bool = False


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]


def q(expr: str, legend: str, *owners: str, sporadic: bool = False) -> Query:
    return Query(expr, legend, frozenset(owners), sporadic)


def rate(metric: str, selector: str = "") -> str:
    return f"rate({metric}{{{selector}}}[{RATE}])"


def by_queue(metric: str, queues: str) -> str:
    """`metric` summed per RabbitMQ queue whose name matches the regular expression `queues`."""
    return f'sum by (queue) ({metric}{{queue=~"{queues}"}})'


def red_row(name: str) -> Row:
    """The platform overview's row for one service: rate, errors, duration, instances."""
    sel = f'service="{name}"'
    return Row(
        name,
        (
            Panel(
                "Requests",
                (q(f"service:outrigger_http_requests:rate5m{{{sel}}}", "requests/s", name),),
                unit="reqps",
                description="API requests per second (probes and /metrics left out).",
            ),
            Panel(
                "Server errors",
                (q(f"service:outrigger_http_errors:ratio_rate5m{{{sel}}}", "5xx ratio", name),),
                unit="percentunit",
                description="Share of API requests answered with a 5xx.",
            ),
            Panel(
                "Latency",
                (
                    q(
                        f"service:outrigger_http_request_duration_seconds:p50_5m{{{sel}}}",
                        "p50",
                        name,
                    ),
                    q(
                        f"service:outrigger_http_request_duration_seconds:p99_5m{{{sel}}}",
                        "p99",
                        name,
                    ),
                ),
                unit="s",
                description="Request duration, streaming (subscribe) routes left out. "
                "Click a point for the traces slower than it.",
                traces_of=name,
            ),
            Panel(
                "Instances",
                (
                    q(f'sum(up{{job="outrigger",{sel}}})', "up", name),
                    q(
                        f"service:outrigger_readyz_failures:ratio_rate5m{{{sel}}}",
                        "not ready",
                        name,
                    ),
                ),
                description="Targets answering scrapes, and the share of failing /readyz probes.",
            ),
        ),
    )


def backends_row() -> Row:
    consumers = [queue.name for service in DEPLOYED for queue in service.queues]
    work = "|".join(name.replace(".", "\\\\.") for name in consumers) or "none"
    return Row(
        "Backends",
        (
            Panel(
                "RabbitMQ work queues",
                (
                    q(
                        by_queue("rabbitmq_detailed_queue_messages_ready", work),
                        "{{queue}} ready",
                        ANY_CONSUMER,
                        "rabbitmq",
                    ),
                    q(
                        by_queue("rabbitmq_detailed_queue_messages", f"({work})\\\\.dlq"),
                        "{{queue}}",
                        ANY_CONSUMER,
                        "rabbitmq",
                    ),
                ),
                description="Messages waiting in each work queue, and in its dead-letter queue.",
            ),
            Panel(
                "RabbitMQ connections",
                (q("sum(rabbitmq_connections)", "connections", "rabbitmq"),),
            ),
            Panel(
                "PostgreSQL",
                (
                    q("min(pg_up)", "up", "postgres"),
                    q("sum(pg_stat_activity_count)", "connections", "postgres"),
                ),
            ),
            Panel(
                "PostgreSQL longest transaction",
                (q("max(pg_stat_activity_max_tx_duration)", "seconds", "postgres"),),
                unit="s",
                description="Long transactions hold back the event-store sequencer.",
            ),
            Panel(
                "Redis memory",
                (q("sum(redis_memory_used_bytes)", "used", "redis"),),
                unit="bytes",
            ),
            Panel(
                "Redis evictions and clients",
                (
                    q(f"sum(rate(redis_evicted_keys_total[{RATE}]))", "evicted/s", "redis"),
                    q("sum(redis_connected_clients)", "clients", "redis"),
                ),
            ),
        ),
    )


def overview() -> Dashboard:
    return Dashboard(
        "outrigger-overview",
        "Outrigger / Platform overview",
        "Rate, errors and duration of every service, one row each, then the backends.",
        (*(red_row(info.name) for info in catalog.SERVICES), backends_row()),
    )


def requests_row(service: Deployed) -> Row:
    name = service.name
    sel = f'service="{name}",{NOT_PROBES}'
    errors = f'{sel},status=~"4xx|5xx"'
    return Row(
        "Requests",
        (
            Panel(
                "Requests by route",
                (
                    q(
                        f"sum by (method, route) ({rate('outrigger_http_requests_total', sel)})",
                        "{{method}} {{route}}",
                        name,
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Errors by route",
                (
                    q(
                        f"sum by (route, status) ({rate('outrigger_http_requests_total', errors)})",
                        "{{status}} {{route}}",
                        name,
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "p99 latency by route",
                (
                    q(
                        "histogram_quantile(0.99, sum by (route, le) "
                        f"(rate(outrigger_http_request_duration_seconds_bucket{{{sel}}}[{RATE}])))",
                        "{{route}}",
                        name,
                    ),
                ),
                unit="s",
                description="Click a point for the traces slower than it.",
                traces_of=name,
            ),
        ),
    )


def bus_row(service: Deployed) -> Row:
    name = service.name
    owners = (name, *(queue.fed_by for queue in service.queues))
    queues = "|".join(queue.name.replace(".", "\\\\.") for queue in service.queues)
    sel = f'service="{name}"'
    return Row(
        "Messages",
        (
            Panel(
                "Deliveries handled",
                (
                    q(
                        f"sum by (queue, outcome) ({rate('outrigger_bus_consumed_total', sel)})",
                        "{{queue}} {{outcome}}",
                        *owners,
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Handler p99",
                (
                    q(
                        "histogram_quantile(0.99, sum by (queue, le) (rate("
                        f'outrigger_bus_handler_duration_seconds_bucket{{service="{name}"}}[{RATE}])))',
                        "{{queue}}",
                        *owners,
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Queue depth",
                (
                    q(
                        by_queue("rabbitmq_detailed_queue_messages_ready", queues),
                        "{{queue}} ready",
                        name,
                        "rabbitmq",
                    ),
                    q(
                        by_queue("rabbitmq_detailed_queue_messages_unacked", queues),
                        "{{queue}} unacked",
                        name,
                        "rabbitmq",
                    ),
                    q(
                        by_queue("rabbitmq_detailed_queue_messages", f"({queues})\\\\.dlq"),
                        "{{queue}}",
                        name,
                        "rabbitmq",
                    ),
                ),
            ),
        ),
    )


def database_row(service: Deployed) -> Row:
    return Row(
        "Database",
        (
            Panel(
                "Query p99",
                (
                    q(
                        f'service_query:outrigger_db_query_duration_seconds:p99_5m{{service="{service.name}"}}',
                        "{{query}}",
                        service.name,
                        ANY_DATABASE_USER,
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Queries",
                (
                    q(
                        "sum by (query) (rate(outrigger_db_query_duration_seconds_count"
                        f'{{service="{service.name}"}}[{RATE}]))',
                        "{{query}}",
                        service.name,
                    ),
                ),
                unit="ops",
            ),
        ),
    )


def resilience_row(service: Deployed) -> Row:
    sel = f'service="{service.name}"'
    return Row(
        "Resilience",
        (
            Panel(
                "Circuit breakers",
                (
                    q(
                        f"max by (name) (outrigger_circuit_breaker_state{{{sel}}})",
                        "{{name}}",
                        sporadic=True,
                    ),
                ),
                description="0 closed, 1 half-open, 2 open.",
            ),
            Panel(
                "Rejections and retries",
                (
                    q(
                        "sum by (name, reason) "
                        f"({rate('outrigger_resilience_rejections_total', sel)})",
                        "{{name}} {{reason}}",
                        sporadic=True,
                    ),
                    q(
                        f"sum by (name) ({rate('outrigger_resilience_retries_total', sel)})",
                        "{{name}} retries",
                        sporadic=True,
                    ),
                ),
                unit="ops",
            ),
        ),
    )


def service_dashboard(service: Deployed) -> Dashboard:
    rows = [requests_row(service)]
    own = OWN_ROWS.get(service.name)
    if own is not None:
        rows.append(own)
    if service.queues:
        rows.append(bus_row(service))
    if POSTGRES in service.backends:
        rows.append(database_row(service))
    rows.append(resilience_row(service))
    return Dashboard(
        f"outrigger-{service.name}",
        f"Outrigger / {service.name}",
        f"The {service.name} service: its requests, its own figures, messages and dependencies.",
        tuple(rows),
    )


def _event_store() -> Row:
    es = "event-store"
    return Row(
        "Event store",
        (
            Panel(
                "Appends",
                (
                    q(f"sum(rate(outrigger_event_store_appends_total[{RATE}]))", "appends/s", es),
                    q(
                        f"sum(rate(outrigger_event_store_events_appended_total[{RATE}]))",
                        "events/s",
                        es,
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Conflicts and idempotent replays",
                (
                    q(
                        f"sum(rate(outrigger_event_store_conflicts_total[{RATE}]))",
                        "conflicts/s",
                        es,
                    ),
                    q(
                        f"sum(rate(outrigger_event_store_idempotent_replays_total[{RATE}]))",
                        "replays/s",
                        es,
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Global log head",
                (q("max(outrigger_event_store_head_position)", "position", es),),
                stat=True,
            ),
            Panel(
                "Sequencer delay",
                (
                    q(
                        "max(outrigger_event_store_sequencer_delay_seconds)",
                        "oldest unsequenced",
                        es,
                    ),
                ),
                unit="s",
                description="Age of the oldest event not yet in the global log.",
            ),
            Panel(
                "Oldest open transaction",
                (q("max(outrigger_event_store_oldest_transaction_age_seconds)", "age", es),),
                unit="s",
                description="A long transaction anywhere in the cluster holds the sequencer back.",
            ),
            Panel(
                "Relay lag",
                (q("max(outrigger_event_store_relay_lag_events)", "events behind the head", es),),
            ),
            Panel(
                "Subscribers and leaders",
                (
                    q("sum(outrigger_event_store_subscribers)", "SSE subscribers", es),
                    q(
                        'sum(outrigger_leader{election="event_store.sequencer"})',
                        "sequencer leaders",
                        es,
                    ),
                    q(
                        'sum(outrigger_leader{election=~"event_store[.]relay[.].+"})',
                        "relay leaders",
                        es,
                    ),
                ),
                description="One replica sequences and one relays; zero of either stalls the log.",
            ),
        ),
    )


def _cache() -> Row:
    c = "cache"
    return Row(
        "Cache",
        (
            Panel(
                "Hit ratio by namespace",
                (q("namespace:outrigger_cache_hit_ratio:rate5m", "{{namespace}}", c),),
                unit="percentunit",
            ),
            Panel(
                "Hits and misses",
                (
                    q(
                        f"sum by (namespace) (rate(outrigger_cache_hits_total[{RATE}]))",
                        "{{namespace}} hits",
                        c,
                    ),
                    q(
                        f"sum by (namespace) (rate(outrigger_cache_misses_total[{RATE}]))",
                        "{{namespace}} misses",
                        c,
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Evictions and expirations",
                (
                    q(
                        f"sum(rate(outrigger_cache_evictions_total[{RATE}]))",
                        "evicted/s",
                        sporadic=True,
                    ),
                    q(f"sum(rate(outrigger_cache_expirations_total[{RATE}]))", "expired/s", c),
                ),
                unit="ops",
            ),
            Panel(
                "Locks",
                (
                    q(
                        f"sum(rate(outrigger_cache_lock_acquisitions_total[{RATE}]))",
                        "acquired/s",
                        c,
                    ),
                    q(
                        f"sum(rate(outrigger_cache_lock_contention_total[{RATE}]))",
                        "contended/s",
                        c,
                    ),
                    q(
                        f"sum by (reason) (rate(outrigger_cache_lock_losses_total[{RATE}]))",
                        "lost/s ({{reason}})",
                        sporadic=True,
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Stampede protection",
                (
                    q(f"sum(rate(outrigger_cache_fill_leases_total[{RATE}]))", "leases/s", c),
                    q(
                        f"sum(rate(outrigger_cache_fill_waits_total[{RATE}]))",
                        "told to wait/s",
                        sporadic=True,
                    ),
                    q(
                        f"sum(rate(outrigger_cache_stale_served_total[{RATE}]))",
                        "stale served/s",
                        sporadic=True,
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Invalidations",
                (
                    q(
                        f"sum by (source) (rate(outrigger_cache_invalidations_total[{RATE}]))",
                        "{{source}} invalidations/s",
                        c,
                        "event-store",
                    ),
                    q(
                        "sum by (source) "
                        f"(rate(outrigger_cache_invalidated_entries_total[{RATE}]))",
                        "{{source}} entries/s",
                        c,
                        "event-store",
                    ),
                ),
                unit="ops",
            ),
            Panel(
                "Invalidation lag p99",
                (
                    q(
                        "histogram_quantile(0.99, sum by (le) "
                        f"(rate(outrigger_cache_invalidation_lag_seconds_bucket[{RATE}])))",
                        "p99",
                        c,
                        "event-store",
                    ),
                ),
                unit="s",
                description="From an event's append to its tags being invalidated.",
            ),
        ),
    )


def _quantiles(histogram: str, owner: str, by: str = "") -> tuple[Query, ...]:
    """p50 and p99 of a histogram, per value of label `by` if given."""
    group = f"{by}, le" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else ""
    return tuple(
        q(
            f"histogram_quantile({quantile}, sum by ({group}) (rate({histogram}_bucket[{RATE}])))",
            prefix + name,
            owner,
        )
        for quantile, name in (("0.5", "p50"), ("0.99", "p99"))
    )


def _audit() -> Row:
    a = "audit"
    return Row(
        "Audit log",
        (
            Panel(
                "Records ingested",
                (
                    q(
                        "sum by (path, result) "
                        f"(rate(outrigger_audit_records_ingested_total[{RATE}]))",
                        "{{path}} {{result}}",
                        a,
                    ),
                ),
                unit="ops",
                description="By path (queue, http) and result: stored, duplicate (a retry, "
                "answered with its first receipt) or rejected.",
            ),
            Panel(
                "Batch size",
                _quantiles("outrigger_audit_batch_size", a, by="path"),
                description="Records per committed append (one transaction, one tree "
                "extension), by path: queue batches hold up to 500, HTTP requests up to 1000.",
            ),
            Panel(
                "Ingest lag",
                _quantiles("outrigger_audit_ingest_lag_seconds", a),
                unit="s",
                description="From a record's `time` to the commit that stored it "
                "(AuditIngestLagging).",
            ),
            Panel(
                "Tree size by tenant",
                (q("max by (tenant) (outrigger_audit_tree_size)", "{{tenant}}", a),),
                description="Leaves in each tenant's Merkle tree (retention drops rows, never "
                "leaves).",
            ),
            Panel(
                "Checkpoint age by tenant",
                (q("min by (tenant) (outrigger_audit_checkpoint_age_seconds)", "{{tenant}}", a),),
                unit="s",
                description="Age of each tenant's newest signed checkpoint. It grows while a "
                "tenant is idle; while its tree grows it stays near OUTRIGGER_AUDIT_CHECKPOINT_"
                "SECONDS (AuditCheckpointStale).",
            ),
            Panel(
                "Dead letters",
                (
                    q(
                        "sum(increase(outrigger_bus_dead_lettered_total"
                        '{queue="audit.records"}[1h]))',
                        "in the last hour",
                        sporadic=True,
                    ),
                ),
                description="Messages on audit.records that were not valid audit records, sent "
                "to audit.records.dlq with the reason (AuditDeadLetters).",
            ),
            Panel(
                "Verify failures",
                (
                    q(
                        "sum by (tenant) (increase(outrigger_audit_verify_failures_total[1h]))",
                        "{{tenant}} in the last hour",
                        sporadic=True,
                    ),
                ),
                description="Verifications that found a row, hash or checkpoint that does not "
                "match (AuditVerifyFailed pages on any).",
            ),
            Panel(
                "Checkpoints and reveals",
                (
                    q(
                        f"sum(rate(outrigger_audit_checkpoints_issued_total[{RATE}]))",
                        "checkpoints issued/s",
                        a,
                    ),
                    q(
                        f"sum(rate(outrigger_audit_reveals_total[{RATE}]))",
                        "records revealed/s",
                        sporadic=True,
                    ),
                ),
                unit="ops",
                description="Checkpoints signed and stored; records read in clear with "
                "audit:reveal (each one is itself an audit record).",
            ),
            Panel(
                "Leaders",
                (
                    q(
                        'sum(outrigger_leader{election="audit.checkpoints"})',
                        "checkpoint leaders",
                        a,
                    ),
                    q(
                        'sum(outrigger_leader{election="audit.retention"})',
                        "retention leaders",
                        sporadic=True,
                    ),
                ),
                description="One replica issues the checkpoints and, with a retention period, "
                "one drops old records; none issuing stops checkpoints (AuditCheckpointStale).",
            ),
        ),
    )


def _notifications() -> Row:
    n = "notifications"
    return Row(
        "Notifications",
        (
            Panel(
                "Connections",
                (
                    q("sum(outrigger_notifications_connections)", "open streams", n),
                    q("sum by (instance) (outrigger_notifications_connections)", "{{instance}}", n),
                ),
                description="Open SSE streams, in all and per replica. The autoscaler keeps "
                "the average near 5,000 a replica (a Pods metric, through prometheus-adapter).",
            ),
            Panel(
                "Deliveries",
                (
                    q(
                        f"sum(rate(outrigger_notifications_deliveries_total[{RATE}]))",
                        "frames offered/s",
                        n,
                    ),
                    q(
                        f"sum by (via) (rate(outrigger_notifications_published_total[{RATE}]))",
                        "published/s ({{via}})",
                        n,
                    ),
                    q(
                        f"sum by (via) (rate(outrigger_notifications_duplicates_total[{RATE}]))",
                        "duplicates/s ({{via}})",
                        n,
                    ),
                ),
                unit="ops",
                description="Messages published (over HTTP or from RabbitMQ; a duplicate is a "
                "known id, stored once), and frames offered to subscribers: one per message per "
                "subscriber following its channel.",
            ),
            Panel(
                "Delivery time",
                _quantiles("outrigger_notifications_delivery_seconds", n),
                unit="s",
                description="From a message's publish (its history id's time) to its replica "
                "having offered it to every local subscriber (NotificationsDeliveryLatencyHigh "
                "above 1 s at p99).",
            ),
            Panel(
                "Drops and disconnects",
                (
                    q(
                        "sum by (reason) "
                        f"(rate(outrigger_notifications_disconnects_total[{RATE}]))",
                        "disconnected/s ({{reason}})",
                        sporadic=True,
                    ),
                    q(
                        f"sum(rate(outrigger_notifications_dropped_messages_total[{RATE}]))",
                        "dropped/s (drop-oldest)",
                        sporadic=True,
                    ),
                ),
                unit="ops",
                description="Subscribers closed because their queue filled (slow_consumer), a "
                "send stalled (send_timeout) or the replica stopped (shutdown): they reconnect "
                "with Last-Event-ID. With the drop-oldest policy, messages dropped from full "
                "queues instead.",
            ),
            Panel(
                "Replays, resets and feed interruptions",
                (
                    q(
                        f"sum(rate(outrigger_notifications_replayed_total[{RATE}]))",
                        "replayed/s",
                        n,
                    ),
                    q(
                        f"sum(increase(outrigger_notifications_resets_total[{RATE}]))",
                        "resets",
                        sporadic=True,
                    ),
                    q(
                        f"sum(increase(outrigger_notifications_feed_interruptions_total[{RATE}]))",
                        "feed interruptions",
                        sporadic=True,
                    ),
                ),
                description="Messages read back from history for subscribers resuming with "
                "Last-Event-ID or since=earliest; resets (history no longer reached back that "
                "far); cuts of a replica's live feed from Redis (refilled from history).",
            ),
            Panel(
                "History",
                (
                    q("max(outrigger_notifications_history_channels)", "channels", n),
                    q("max(outrigger_notifications_history_messages)", "messages", n),
                ),
                description="Channels holding history and the messages kept in all, as the "
                "trim loop last counted them (bounded by OUTRIGGER_NOTIFICATIONS_HISTORY_MAX_"
                "LENGTH per channel and _MAX_AGE_SECONDS).",
            ),
            Panel(
                "Dead letters",
                (
                    q(
                        "sum(increase(outrigger_bus_dead_lettered_total"
                        '{queue="notifications.ingest"}[1h]))',
                        "in the last hour",
                        sporadic=True,
                    ),
                ),
                description="Messages on notifications.ingest that could not become "
                "notifications, sent to notifications.ingest.dlq with the reason "
                "(NotificationsIngestDeadLetters).",
            ),
        ),
    )


def _plugin_executor() -> Row:
    p = "plugin-executor"
    return Row(
        "Plugin executor",
        (
            Panel(
                "Runs by reason",
                (
                    q(
                        f"sum by (reason) (rate(outrigger_plugins_runs_total[{RATE}]))",
                        "{{reason}}",
                        p,
                    ),
                ),
                unit="ops",
                description="Runs a second by how they ended: ok, error (the plugin raised), "
                "the limits (timeout, cpu_limit, memory_limit, output_limit), killed, "
                "invalid_input (a 422, never run), invalid_output and sandbox_violation "
                "(PluginRunsKilled, PluginSandboxViolations).",
            ),
            Panel(
                "Run time per plugin",
                _quantiles("outrigger_plugins_run_wall_seconds", p, by="plugin"),
                unit="s",
                description="Wall-clock time of a run in the sandbox, from the fork to the "
                "result, p50 and p99 per plugin. Near a plugin's wall_seconds, its runs end "
                "timeout.",
            ),
            Panel(
                "Peak memory per plugin",
                _quantiles("outrigger_plugins_run_max_rss_bytes", p, by="plugin"),
                unit="bytes",
                description="Peak resident memory of a run's process, p50 and p99 per plugin, "
                "against its memory_mib (memory_limit beyond).",
            ),
            Panel(
                "Queue depth",
                (q("sum by (instance) (outrigger_plugins_queue_depth)", "{{instance}}", p),),
                description="Runs waiting for a free worker, per replica; beyond "
                "OUTRIGGER_PLUGINS_QUEUE_SIZE callers get 503 (PluginQueueBacklog above twice "
                "the workers for 5 minutes).",
            ),
            Panel(
                "Pool",
                (
                    q("sum(outrigger_plugins_pool_workers)", "workers", p),
                    q("sum(outrigger_plugins_pool_busy)", "busy", p),
                ),
                description="Workers alive and workers running a job, over every replica "
                "(PluginPoolSaturated when all are busy for 15 minutes).",
            ),
            Panel(
                "Sandbox layers",
                (q("min by (feature) (outrigger_plugins_sandbox_feature)", "{{feature}}", p),),
                description="1 for each layer every replica gives its runs, 0 for one a "
                "replica lacks. In a container network_namespace and separate_uid are 0; the "
                "deployment requires rlimits, session, seccomp and landlock "
                "(PluginSandboxBelowMinimum).",
                stat=True,
            ),
            Panel(
                "Plugins",
                (
                    q("max(outrigger_plugins_loaded)", "loaded", p),
                    q("max(outrigger_plugins_problems)", "problems", p),
                ),
                description="Plugins the last scan of OUTRIGGER_PLUGIN_DIR loaded, and folders "
                "it could not (GET /v1/plugins with plugins:admin says why).",
            ),
        ),
    )


OWN_ROWS: dict[str, Row] = {
    "audit": _audit(),
    "event-store": _event_store(),
    "cache": _cache(),
    "notifications": _notifications(),
    "plugin-executor": _plugin_executor(),
}


def dashboards() -> list[Dashboard]:
    return [overview(), *(service_dashboard(service) for service in DEPLOYED)]
