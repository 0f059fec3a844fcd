"""Named policies, one per dependency, shared by everything in the process that calls it.

`policy("event-store")` returns the same `Policy` every time, so the HTTP client and an adapter
calling the same dependency share one circuit breaker and one bulkhead. A policy is built from
`PolicyDefaults` on first use; wiring code overrides one with `policies.register(Policy(...))`
or changes `policies.defaults` before first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from outrigger.resilience.breaker import CircuitBreaker
from outrigger.resilience.bulkhead import Bulkhead
from outrigger.resilience.policy import Policy
from outrigger.resilience.retry import Retry
from outrigger.resilience.timeout import Timeout


@dataclass(frozen=True)
class PolicyDefaults:
    """What a policy gets unless registered otherwise. None leaves that part out.

    No timeout and no bulkhead by default: transports carry their own timeouts and pools.
    """

    timeout: float | None = None
    attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 2.0
    failure_threshold: int = 5
    reset_timeout: float = 30.0
    max_concurrent: int | None = None
    max_queue: int = 0

    def build(self, name: str) -> Policy:
        return Policy(
            name,
            timeout=Timeout(self.timeout) if self.timeout is not None else None,
            retry=Retry(self.attempts, self.base_delay, self.max_delay),
            breaker=CircuitBreaker(name, self.failure_threshold, self.reset_timeout),
            bulkhead=(
                Bulkhead(name, self.max_concurrent, self.max_queue)
                if self.max_concurrent is not None
                else None
            ),
        )


class PolicyRegistry:
    """Policies by name, built from `defaults` on first use."""

    def __init__(self, defaults: PolicyDefaults | None = None) -> None:
        self.defaults = defaults or PolicyDefaults()
        self._policies: dict[str, Policy] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._policies

    def get(self, name: str) -> Policy:
        """The policy called `name`: the same object on every call."""
        if name not in self._policies:
            self._policies[name] = self.defaults.build(name)
        return self._policies[name]

    def register(self, policy: Policy) -> Policy:
        """Makes `policy` the one returned for its name from now on, replacing any other."""
        self._policies[policy.name] = policy
        return policy

    def clear(self) -> None:
        self._policies.clear()


policies = PolicyRegistry()


def policy(name: str) -> Policy:
    """The process-wide policy called `name` (see `PolicyRegistry.get`)."""
    return policies.get(name)
