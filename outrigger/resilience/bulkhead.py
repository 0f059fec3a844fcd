"""`Bulkhead`: at most N calls at once to a dependency, a short bounded queue, then refusal.

Refusal is `BulkheadFull`, an `InfrastructureError` (503 with `Retry-After`), not `RateLimited`
(429): the caller did nothing wrong and has no quota to respect; this process is at capacity
for one dependency and the same request may pass in a moment. Being infrastructure, it is also
what the circuit breaker and retries of a calling service treat as transient.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple

from outrigger.errors import BulkheadFull
from outrigger.resilience.metrics import REJECTIONS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Bulkhead:
    """Bounded concurrency with a bounded FIFO wait queue, for one event loop.

    A call runs at once when fewer than `max_concurrent` are running and nobody waits; else it
    waits in the queue if fewer than `max_queue` are waiting; else it is refused at once with
    `BulkheadFull`. With `max_wait` set, a call that waited that long leaves the queue and is
    refused too. A freed slot goes to the longest waiter. Refusals are counted in
    `outrigger_resilience_rejections_total{reason="bulkhead_full"}`.
    """

    def __init__(
        self, name: str, max_concurrent: int, max_queue: int = 0, max_wait: float | None = None
    ) -> None:
        if max_concurrent < 1 or max_queue < 0 or (max_wait is not None and max_wait < 0):
            raise ValueError("need max_concurrent >= 1, max_queue >= 0 and max_wait >= 0")
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.max_wait = max_wait
        self._running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def running(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def call(self, fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
        """`await fn(*args)` inside a slot, or raise `BulkheadFull` without calling."""
        async with self.slot():
            return await fn(*args)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Holds one slot for the block; raises `BulkheadFull` when none can be had."""
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        if self._running < self.max_concurrent and not self._waiters:
            self._running += 1
            return
        if len(self._waiters) >= self.max_queue:
            raise self._refuse(
                f"{self._running} calls running and {len(self._waiters)} waiting, the most allowed"
            )
        turn = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            async with asyncio.timeout(self.max_wait):
                await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled():
                self._release()
            else:
                turn.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(turn)
            if isinstance(exc, TimeoutError):
                raise self._refuse(f"no slot freed within {self.max_wait:g} s") from None
            raise

    def _release(self) -> None:
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._running -= 1

    def _refuse(self, why: str) -> BulkheadFull:
        REJECTIONS.labels(self.name, "bulkhead_full").inc()
        return BulkheadFull(
            f'bulkhead "{self.name}" is full ({why}); try again shortly',
            headers={"Retry-After": "1"},
        )
