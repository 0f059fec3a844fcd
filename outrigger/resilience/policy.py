"""`Policy`: a named composition of bulkhead, retry, circuit breaker and timeout.

From the outside in:

    bulkhead → retry → circuit breaker → timeout → the call

- The bulkhead is outermost: a logical call holds one slot through all its attempts and
  backoff sleeps, so retries against a struggling dependency cannot multiply the work in flight,
  and a refused call is refused once, not retried.
- Retry wraps the breaker, so the breaker judges every attempt: its consecutive-failure count
  is a count of real failed requests, a half-open probe is one request (not a retry loop), and
  once the circuit opens the retry stops at once (`CircuitOpen` is not retryable).
- The timeout is innermost, per attempt: a slow attempt is abandoned and can be retried, and
  it counts as a breaker failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, TypeVarTuple

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from outrigger.resilience.breaker import CircuitBreaker
    from outrigger.resilience.bulkhead import Bulkhead
    from outrigger.resilience.retry import Retry
    from outrigger.resilience.timeout import Timeout

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Policy:
    """Runs calls to one dependency under the parts it was given; any part may be left out.

    Metrics are labelled with `name` (the breaker and bulkhead keep their own names).
    """

    def __init__(
        self,
        name: str,
        *,
        timeout: Timeout | None = None,
        retry: Retry | None = None,
        breaker: CircuitBreaker | None = None,
        bulkhead: Bulkhead | None = None,
    ) -> None:
        self.name = name
        self.timeout = timeout
        self.retry = retry
        self.breaker = breaker
        self.bulkhead = bulkhead

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{key}={value!r}"
            for key, value in vars(self).items()
            if key != "name" and value is not None
        )
        return f"Policy({self.name!r}{', ' if parts else ''}{parts})"

    async def call(
        self,
        fn: Callable[[*Ts], Awaitable[T]],
        *args: *Ts,
        retry_if: Callable[[BaseException], bool] | None = None,
    ) -> T:
        """`await fn(*args)` under the policy; `fn` is called anew for every attempt.

        Raises what the last attempt raised, or `BulkheadFull`, `CircuitOpen` or
        `outrigger.errors.Timeout` when the policy itself gave up. `retry_if` narrows, for this
        call only, which failures the retry may repeat (a non-idempotent request, say).
        """

        async def attempt() -> T:
            if self.timeout is None:
                return await fn(*args)
            return await self.timeout.call(fn, *args, name=self.name)

        async def guarded() -> T:
            if self.breaker is None:
                return await attempt()
            return await self.breaker.call(attempt)

        async def retried() -> T:
            if self.retry is None:
                return await guarded()
            return await self.retry.call(guarded, name=self.name, retry_if=retry_if)

        if self.bulkhead is None:
            return await retried()
        async with self.bulkhead.slot():
            return await retried()
