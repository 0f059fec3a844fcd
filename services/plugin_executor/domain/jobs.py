"""Jobs: a run asked for asynchronously (over HTTP or on the bus), its state as it goes
(queued, running, done), its last progress and, once done, its outcome.

A job's id is a UUID: with an idempotency key, the UUID 5 of the caller and the key (the same
key from the same caller names the same job), else a random one; a bus job's id is its
CloudEvent's. Its `fingerprint` is the SHA-256 of the request (plugin and input, as canonical
JSON): a key reused with another request is refused, as the IETF's Idempotency-Key draft says.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from services.plugin_executor.domain.models import Outcome, Progress

JOB_IDS: Final = uuid.UUID("3f0a7c4e-5b8e-4d0c-9a51-6c1f2f7c9d10")
"""The namespace of the UUID 5 job ids derived from (caller, idempotency key)."""
MAX_IDEMPOTENCY_KEY: Final = 255
IDEMPOTENCY_KEY_PATTERN: Final = r"^[\x20-\x7e]{1,255}$"
BUS_OWNER_PREFIX: Final = "bus:"


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Job:
    """One job. `owner` is the subject of the token that asked for it (`bus:<source>` for a
    job from the bus); `version` the plugin's version once a run began; `outcome` only once
    `state` is done."""

    id: str
    plugin: str
    owner: str
    fingerprint: str
    state: JobState
    created_at: datetime
    updated_at: datetime
    version: str | None = None
    progress: Progress | None = None
    outcome: Outcome | None = None

    @classmethod
    def queued(cls, job_id: str, plugin: str, owner: str, fingerprint: str) -> Job:
        now = datetime.now(UTC)
        return cls(job_id, plugin, owner, fingerprint, JobState.QUEUED, now, now)

    def running(self, version: str | None) -> Job:
        return replace(self, state=JobState.RUNNING, version=version, updated_at=datetime.now(UTC))

    def progressed(self, progress: Progress) -> Job:
        return replace(self, progress=progress, updated_at=datetime.now(UTC))

    def requeued(self) -> Job:
        return replace(self, state=JobState.QUEUED, updated_at=datetime.now(UTC))

    def done(self, outcome: Outcome, version: str | None) -> Job:
        return replace(
            self,
            state=JobState.DONE,
            outcome=outcome,
            version=version or self.version,
            updated_at=datetime.now(UTC),
        )


def job_id(owner: str, idempotency_key: str | None) -> str:
    """The id of a new job: derived from the owner and the key when there is one."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(JOB_IDS, f"{owner}\n{idempotency_key}"))


def fingerprint(plugin: str, payload: Any) -> str:
    """SHA-256 of the request as canonical JSON (keys sorted), hex."""
    canonical = json.dumps(
        {"plugin": plugin, "input": payload},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def bus_owner(source: str) -> str:
    """Who owns a job that came on the bus: its CloudEvent source."""
    return f"{BUS_OWNER_PREFIX}{source}"
