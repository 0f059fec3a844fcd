"""`Retry`: exponential backoff with full jitter, for transient failures only.

What counts as transient is decided once here, by `is_transient`, and shared with the circuit
breaker: infrastructure errors, timeouts and dropped connections are; domain errors (`NotFound`,
`Conflict`, `InvalidInput`, …) never are, because asking again gets the same answer.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar, TypeVarTuple

from outrigger.errors import CircuitOpen, InfrastructureError
from outrigger.resilience.metrics import RETRIES

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def is_transient(exc: BaseException) -> bool:
    """Failures that may pass on their own: the breaker counts them, retries repeat them."""
    return isinstance(exc, InfrastructureError | TimeoutError | ConnectionError)


def is_retryable(exc: BaseException) -> bool:
    """Transient, except an open circuit: it stays open for its reset timeout anyway."""
    return is_transient(exc) and not isinstance(exc, CircuitOpen)


@dataclass(frozen=True)
class Retry:
    """Up to `attempts` calls in all, sleeping a random time in [0, cap] between two, where
    cap = min(max_delay, base_delay * 2**(n-1)) after the n-th failure ("full jitter", which
    spreads the retries of many callers instead of synchronising them). `jitter="none"` sleeps
    exactly the cap.

    Stateless, so one `Retry` can serve many policies; `sleep` and `uniform` are injectable
    for tests.
    """

    attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 2.0
    jitter: Literal["full", "none"] = "full"
    retry_on: Callable[[BaseException], bool] = is_retryable
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    uniform: Callable[[float, float], float] = random.uniform

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ValueError(
                f"need 0 <= base_delay <= max_delay, got {self.base_delay} and {self.max_delay}"
            )

    def cap(self, failures: int) -> float:
        """The longest sleep after `failures` consecutive failures (1 for the first)."""
        return min(self.max_delay, self.base_delay * 2.0 ** min(failures - 1, 64))

    def delay(self, failures: int) -> float:
        """The sleep before the next attempt, after `failures` consecutive failures."""
        cap = self.cap(failures)
        return self.uniform(0.0, cap) if self.jitter == "full" else cap

    async def call(
        self,
        fn: Callable[[*Ts], Awaitable[T]],
        *args: *Ts,
        name: str = "unnamed",
        retry_if: Callable[[BaseException], bool] | None = None,
    ) -> T:
        """`await fn(*args)`, again after a retryable failure, until it succeeds or the attempts
        run out; the last failure is raised unchanged. `retry_if` narrows what is retryable for
        this one call (e.g. only idempotent requests); `name` labels the retries metric.
        """
        failures = 0
        while True:
            try:
                return await fn(*args)
            except Exception as exc:
                failures += 1
                if failures >= self.attempts or not self.retry_on(exc):
                    raise
                if retry_if is not None and not retry_if(exc):
                    raise
            RETRIES.labels(name).inc()
            await self.sleep(self.delay(failures))
