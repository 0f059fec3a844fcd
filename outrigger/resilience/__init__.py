"""Named resilience policies: retry, circuit breaker, bulkhead and timeout, composed by `Policy`."""

from outrigger.errors import BulkheadFull
from outrigger.resilience.breaker import CircuitBreaker, CircuitState
from outrigger.resilience.bulkhead import Bulkhead
from outrigger.resilience.policy import Policy
from outrigger.resilience.registry import PolicyDefaults, PolicyRegistry, policies, policy
from outrigger.resilience.retry import Retry, is_retryable, is_transient
from outrigger.resilience.timeout import Timeout

__all__ = [
    "Bulkhead",
    "BulkheadFull",
    "CircuitBreaker",
    "CircuitState",
    "Policy",
    "PolicyDefaults",
    "PolicyRegistry",
    "Retry",
    "Timeout",
    "is_retryable",
    "is_transient",
    "policies",
    "policy",
]
