"""The plugin executor's ports: `Sandbox`, the owned adapter (a warm pool of sandboxed workers),
`PluginSource`, where plugins come from, and `JobStore`, where jobs' state is kept.

Arguments arrive checked: the use-case room validated the input against the plugin's schema and
resolved the limits within the ceilings. Plugin code never runs in the service's process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from services.plugin_executor.domain.jobs import Job
    from services.plugin_executor.domain.models import (
        Features,
        Limits,
        Outcome,
        Plugin,
        Problem,
        Progress,
    )


class Sandbox(Protocol):
    """Runs plugins in confined processes.

    Each run is a fresh process (forked from a warm worker, or started anew when the pool is
    cold): rlimits from `limits`, a session of its own, an empty environment, a private work
    directory removed afterwards, and every other layer of `features()` that the host offers.
    Nothing a run leaves (files, processes, memory) is seen by the next.
    """

    async def start(self) -> None:
        """Probes the host and starts the pool's workers. Raises `SandboxUnavailable` when a
        required feature is missing (the service then refuses to start)."""
        ...

    async def close(self) -> None:
        """Stops taking runs, lets running ones finish within their wall-clock limit (then
        kills them: `Reason.KILLED`), stops the workers. Idempotent."""
        ...

    def features(self) -> Features:
        """The layers active on this host (known after `start`)."""
        ...

    async def run(
        self,
        plugin: Plugin,
        payload: dict[str, Any],
        limits: Limits,
        progress: Callable[[Progress], None] | None = None,
    ) -> Outcome:
        """Runs `plugin` on `payload` and says how it ended; never raises for anything the
        plugin did. `progress` is called with each progress report, in order, before the
        outcome. The outcome's result is a JSON object (not yet checked against the output
        schema). Raises `SandboxUnavailable` (503) if no worker can take the run."""
        ...

    def load(self, plugins: Sequence[Plugin]) -> None:
        """The plugins the warm workers pre-import from now on (workers restart in turn)."""
        ...


class PluginSource(Protocol):
    def scan(self) -> tuple[list[Plugin], list[Problem]]:
        """Every valid plugin of the folder, and a problem for every invalid one."""
        ...


class JobStore(Protocol):
    """Jobs' state, shared by every replica, each job kept for the store's TTL after its last
    write. Every method raises `JobStateUnavailable` when the store cannot be reached; nothing
    is guessed."""

    async def create(self, job: Job) -> Job:
        """Stores `job` unless a job with its id is kept already (atomically: of two replicas
        creating one id, one wins); returns the job kept under that id, this one or the other."""
        ...

    async def get(self, job_id: str) -> Job | None:
        """The job of that id, or None (never created, or expired)."""
        ...

    async def update(self, job: Job) -> None:
        """Writes `job` over the one of its id (or anew), restarting its TTL."""
        ...

    async def discard(self, job_id: str) -> None:
        """Removes the job of that id, if kept (a job whose message could not be sent)."""
        ...

    async def check(self) -> None:
        """Returns if the store answers now; raises `JobStateUnavailable` saying why not."""
        ...

    async def close(self) -> None:
        """Releases the store's connections. Idempotent."""
        ...
