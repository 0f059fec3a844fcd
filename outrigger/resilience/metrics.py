"""The resilience metrics, shared by every policy in the process.

Labels stay low-cardinality: `name` is a policy or breaker name (one per dependency), `to` and
`reason` come from small fixed sets.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

BREAKER_STATE = Gauge(
    "outrigger_circuit_breaker_state",
    "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
    ["name"],
)
BREAKER_TRANSITIONS = Counter(
    "outrigger_circuit_breaker_transitions_total",
    "Circuit breaker state changes, by the state entered (closed, half_open, open).",
    ["name", "to"],
)
REJECTIONS = Counter(
    "outrigger_resilience_rejections_total",
    "Calls refused or abandoned by a policy: circuit_open, bulkhead_full or timeout.",
    ["name", "reason"],
)
RETRIES = Counter(
    "outrigger_resilience_retries_total",
    "Attempts made again after a transient failure.",
    ["name"],
)
