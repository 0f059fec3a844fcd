"""Batches out of deliveries: handlers submit one item each, one call stores many.

A queue's handler runs once per message, but a database takes many rows in one transaction far
faster than one at a time. `Batcher` sits between them: each handler calls `submit(item)` and
waits; the batcher gathers the items of concurrent handlers (as many as the subscription's
prefetch lets run at once) into batches of up to `max_size`, or whatever came within `max_wait`
of the oldest, and calls `flush(items)` once per batch, one batch at a time. Each handler then
returns its item's outcome, so a message is acknowledged only after its batch committed.

    batcher = Batcher(store_many, max_size=500, max_wait=0.05, name="audit-ingest")
    batcher.start()
    await bus.subscribe(queue, bindings, lambda d: batcher.submit(parse(d)), prefetch=1000)
    ...
    await bus.close()        # its handlers return first
    await batcher.stop()

`flush` answers one `Outcome` per item, in order (`Drop` for an item it refuses on its own). If it
raises, every item of the batch is `Retry` with the error as reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Generic, TypeVar

from outrigger.bus.port import Outcome, Retry
from outrigger.errors import OutriggerError
from outrigger.tasks import Periodic

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

T = TypeVar("T")
log = logging.getLogger("outrigger.bus")


class Batcher(Generic[T]):
    """Gathers submitted items into batches for `flush`; `start()` it before submitting."""

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[Sequence[Outcome]]],
        *,
        max_size: int = 500,
        max_wait: float = 0.05,
        name: str = "batcher",
    ) -> None:
        if max_size < 1 or max_wait <= 0:
            raise ValueError(
                f"batches need max_size >= 1 and max_wait > 0 ({max_size}, {max_wait})"
            )
        self.max_size = max_size
        self.max_wait = max_wait
        self._flush = flush
        self._pending: list[tuple[T, asyncio.Future[Outcome], float]] = []
        self._full = asyncio.Event()
        self._loop = Periodic(self._step, 1.0, name=name)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Ends after the batch under way; items still waiting are answered `Retry`."""
        await self._loop.stop()
        pending, self._pending = self._pending, []
        for _, future, _ in pending:
            if not future.done():
                future.set_result(Retry("the batcher stopped before this item's batch ran"))

    async def submit(self, item: T) -> Outcome:
        """The outcome of `item`, once the batch holding it was flushed."""
        if not self._loop.running:
            return Retry("the batcher is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._pending.append((item, future, loop.time()))
        if len(self._pending) == 1:
            self._loop.wake()
        if len(self._pending) >= self.max_size:
            self._full.set()
        return await future

    async def _step(self) -> bool:
        if not self._pending:
            return False
        wait = self._pending[0][2] + self.max_wait - asyncio.get_running_loop().time()
        if len(self._pending) < self.max_size and wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._full.wait()
        batch = self._pending[: self.max_size]
        del self._pending[: self.max_size]
        if len(self._pending) < self.max_size:
            self._full.clear()
        outcomes = await self._outcomes([item for item, _, _ in batch])
        for (_, future, _), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
        return bool(self._pending)

    async def _outcomes(self, items: list[T]) -> Sequence[Outcome]:
        try:
            outcomes = await self._flush(items)
        except Exception as exc:
            if isinstance(exc, OutriggerError):
                reason = exc.detail
            else:
                reason = f"{type(exc).__name__}: {exc}"
                log.exception("a batch of %d failed; every item will be retried", len(items))
            return [Retry(reason)] * len(items)
        if len(outcomes) != len(items):
            reason = f"flush answered {len(outcomes)} outcomes for {len(items)} items"
            log.error("%s; every item will be retried", reason)
            return [Retry(reason)] * len(items)
        return outcomes
