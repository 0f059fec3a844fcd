"""What is said about a job: the document the API shows and its events carry, the
notifications channel it is followed on, and the ids of the events about it (the same each time
one is sent again, so consumers that de-duplicate by id see it once)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from services.plugin_executor.domain import Reason
from services.plugin_executor.domain.jobs import JOB_IDS

if TYPE_CHECKING:
    from services.plugin_executor.domain import Job


def job_document(job: Job) -> dict[str, Any]:
    """A job as the API shows it and as its result events carry it."""
    outcome = job.outcome
    return {
        "id": job.id,
        "plugin": job.plugin,
        "version": job.version,
        "state": job.state.value,
        "progress": None if job.progress is None else asdict(job.progress),
        "result": outcome.result if outcome is not None and outcome.reason is Reason.OK else None,
        "reason": None if outcome is None else outcome.reason.value,
        "detail": None if outcome is None else outcome.detail,
        "usage": None if outcome is None else asdict(outcome.usage),
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }


def channel(job: str) -> str:
    """The notifications channel of a job."""
    return f"jobs.{job}"


def derived(job: str, what: str) -> str:
    """The id of an event about a job, the same each time it is sent again."""
    return str(uuid.uuid5(JOB_IDS, f"{job}/{what}"))
