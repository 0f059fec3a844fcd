"""`Timeout`: a deadline on one attempt, reported as the kit's `Timeout` error."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple

from outrigger import errors
from outrigger.resilience.metrics import REJECTIONS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass(frozen=True)
class Timeout:
    """Cancels a call still running after `seconds` and raises `outrigger.errors.Timeout`.

    Only the expiry of this deadline is translated; a `TimeoutError` raised by the call itself
    passes through unchanged. Stateless, so one `Timeout` can serve many policies.
    """

    seconds: float

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError(f"a timeout must be positive, got {self.seconds}")

    async def call(self, fn: Callable[[*Ts], Awaitable[T]], *args: *Ts, name: str = "unnamed") -> T:
        """`await fn(*args)` within the deadline; `name` labels the rejections metric."""
        deadline = asyncio.timeout(self.seconds)
        try:
            async with deadline:
                return await fn(*args)
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            REJECTIONS.labels(name, "timeout").inc()
            raise errors.Timeout(f"{name}: no answer within {self.seconds:g} s") from exc
