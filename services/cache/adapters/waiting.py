"""Waiting for a contended lock or a fill in progress: retry with jittered backoff until a deadline.

Both adapters poll rather than subscribe to a notification: a waiter costs one cheap atomic
attempt every 5-100 ms, which stays small next to the work a lock or a fill lease protects, and a
poll cannot miss a wake-up when a connection drops or the holder vanishes without a word.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from services.cache.domain import Lock, Lookup

T = TypeVar("T")

FIRST_DELAY_SECONDS = 0.005
MAX_DELAY_SECONDS = 0.1


async def retry_until(
    attempt: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    wait_ms: int,
    *,
    pause_ms: Callable[[T], int] | None = None,
) -> T:
    """Calls `attempt` until `done(result)` or `wait_ms` ran out; returns the last result.

    The pause between attempts doubles from 5 ms to 100 ms (jittered, so waiters spread out),
    but never exceeds `pause_ms(result)` (how long the obstacle says it may last) or the deadline.
    """
    deadline = time.monotonic() + wait_ms / 1000
    delay = FIRST_DELAY_SECONDS
    while True:
        result = await attempt()
        remaining = deadline - time.monotonic()
        if done(result) or remaining <= 0:
            return result
        pause = delay * random.uniform(0.5, 1.0)
        if pause_ms is not None:
            pause = min(pause, max(pause_ms(result), 1) / 1000)
        await asyncio.sleep(min(pause, remaining))
        delay = min(delay * 2, MAX_DELAY_SECONDS)


async def wait_for_fill(attempt: Callable[[], Awaitable[Lookup]], wait_ms: int) -> Lookup:
    """Repeats a fill-lease lookup until it is settled, pausing no longer than the lease left."""
    return await retry_until(
        attempt, lambda found: found.settled, wait_ms, pause_ms=lambda found: found.retry_after_ms
    )


async def wait_for_lock(attempt: Callable[[], Awaitable[Lock | int]], wait_ms: int) -> Lock | int:
    """Repeats an acquire (a `Lock`, or the holder's remaining ms) until it gets the lock."""
    return await retry_until(attempt, _acquired, wait_ms, pause_ms=_holder_ms)


def _acquired(outcome: Lock | int) -> bool:
    return not isinstance(outcome, int)


def _holder_ms(outcome: Lock | int) -> int:
    return outcome if isinstance(outcome, int) else 0
