"""`CircuitBreaker`: stop calling a dependency that keeps failing, and probe it to come back.

closed ─(failure_threshold consecutive failures)→ open ─(reset_timeout)→ half-open
half-open ─(a probe succeeds)→ closed;  half-open ─(a probe fails)→ open (the clock restarts)

Exported as `outrigger_circuit_breaker_state{name}` (0 closed, 1 half-open, 2 open) and
`outrigger_circuit_breaker_transitions_total{name,to}`; refusals as
`outrigger_resilience_rejections_total{name,reason="circuit_open"}`.
"""

from __future__ import annotations

import enum
import math
import time
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple

from outrigger.errors import CircuitOpen
from outrigger.resilience.metrics import BREAKER_STATE, BREAKER_TRANSITIONS, REJECTIONS
from outrigger.resilience.retry import is_transient

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class CircuitState(enum.IntEnum):
    """The value is what the state gauge shows."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class CircuitBreaker:
    """Guards one dependency. Meant for one event loop: state changes never await.

    A failure is an exception for which `counts_as_failure` is true (by default the transient
    ones: infrastructure errors, timeouts, dropped connections). Any other outcome, a domain
    error included, proves the dependency answers and counts as a success. A cancelled call
    counts as neither. Outcomes of calls admitted before the last state change are ignored, so
    a slow call from before the circuit opened cannot close or re-open it.

    While open, calls fail at once with `CircuitOpen`, whose detail names the breaker and the
    time left before the next probe (also sent as `Retry-After`). Once `reset_timeout` has
    passed, the circuit is half-open: `half_open_max_calls` calls go through as probes and the
    others are refused; the first probe to succeed closes the circuit, the first to fail
    re-opens it. The open → half-open change happens on the next call or state read.
    """

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        *,
        counts_as_failure: Callable[[BaseException], bool] = is_transient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1 or reset_timeout < 0:
            raise ValueError(
                "need failure_threshold >= 1, half_open_max_calls >= 1 and reset_timeout >= 0"
            )
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self.counts_as_failure = counts_as_failure
        self.clock = clock
        self._state = CircuitState.CLOSED
        self._generation = 0
        self._failures = 0
        self._last_failure = ""
        self._opened_at = 0.0
        self._probes = 0
        BREAKER_STATE.labels(name).set(CircuitState.CLOSED)

    @property
    def state(self) -> CircuitState:
        self._refresh()
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted since the circuit last closed."""
        return self._failures

    async def call(self, fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
        """`await fn(*args)` if the circuit admits it, else raise `CircuitOpen` without calling."""
        generation, probe = self._admit()
        try:
            result = await fn(*args)
        except Exception as exc:
            self._settle(generation, probe, failure=exc if self.counts_as_failure(exc) else None)
            raise
        except BaseException:
            if probe and generation == self._generation:
                self._probes -= 1
            raise
        self._settle(generation, probe, failure=None)
        return result

    def _admit(self) -> tuple[int, bool]:
        self._refresh()
        if self._state is CircuitState.CLOSED:
            return self._generation, False
        if self._state is CircuitState.HALF_OPEN and self._probes < self.half_open_max_calls:
            self._probes += 1
            return self._generation, True
        REJECTIONS.labels(self.name, "circuit_open").inc()
        raise self._rejection()

    def _settle(self, generation: int, probe: bool, failure: Exception | None) -> None:
        if generation != self._generation:
            return
        if probe:
            self._probes -= 1
        if failure is None:
            if self._state is CircuitState.HALF_OPEN:
                self._enter(CircuitState.CLOSED)
            self._failures = 0
            return
        self._failures += 1
        self._last_failure = f"{type(failure).__name__}: {failure}"[:200]
        if self._state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._enter(CircuitState.OPEN)

    def _refresh(self) -> None:
        if self._state is CircuitState.OPEN and self._remaining() <= 0:
            self._enter(CircuitState.HALF_OPEN)

    def _remaining(self) -> float:
        return self._opened_at + self.reset_timeout - self.clock()

    def _enter(self, state: CircuitState) -> None:
        self._state = state
        self._generation += 1
        self._probes = 0
        if state is CircuitState.OPEN:
            self._opened_at = self.clock()
        elif state is CircuitState.CLOSED:
            self._failures = 0
        BREAKER_STATE.labels(self.name).set(state)
        BREAKER_TRANSITIONS.labels(self.name, state.label).inc()

    def _rejection(self) -> CircuitOpen:
        if self._state is CircuitState.HALF_OPEN:
            detail = (
                f'circuit "{self.name}" is half-open and its probe is still running; '
                "try again shortly"
            )
            wait = 1.0
        else:
            wait = max(self._remaining(), 0.0)
            detail = (
                f'circuit "{self.name}" is open after {self._failures} consecutive failures '
                f"(last: {self._last_failure}); it lets a probe through in {wait:.1f} s"
            )
        return CircuitOpen(detail, headers={"Retry-After": str(max(1, math.ceil(wait)))})
