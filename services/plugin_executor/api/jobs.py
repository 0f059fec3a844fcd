"""`/v1/jobs`: queue a run (answered at once, run by whichever replica takes it), follow it."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Response

from outrigger.http import ServiceRoute, problem_responses
from services.plugin_executor.api.context import Jobs, Runner
from services.plugin_executor.api.models import JobIn, JobOut
from services.plugin_executor.domain import IDEMPOTENCY_KEY_PATTERN

router = APIRouter(prefix="/v1", tags=["jobs"], route_class=ServiceRoute)

JOB_ID_PATTERN = r"^[A-Za-z0-9._:~-]{1,255}$"

SUBMIT_OUTCOMES = {
    404: "No plugin of that name is loaded.",
    422: "The input does not match the plugin's input schema (`detail` names the first "
    "failing path, `errors` each one), or the Idempotency-Key was used before with another "
    "request (problem type `idempotency-key-reused`).",
    503: "The job could not be queued (the message broker is unavailable): nothing was kept; "
    "try again after `Retry-After`, with the same Idempotency-Key.",
}
GET_OUTCOMES = {
    404: "No job of that id is known to the caller (another caller's, or expired).",
    503: "The job's state is unavailable now (the cache service cannot be reached): it is "
    "not guessed; try again after `Retry-After`.",
}
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="1-255 printable ASCII characters: a retry with the same key and request "
        "gets the same job back instead of a second one; the same key with another request "
        "is a 422.",
    ),
]
JobId = Annotated[
    str,
    Path(
        pattern=JOB_ID_PATTERN,
        description="The job's id: a UUID for a job queued over HTTP, the CloudEvent id of a "
        "job sent on the bus.",
    ),
]


QUEUED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "The job, queued (or, for a retry with the same Idempotency-Key, as it "
        "is now: the same job, perhaps running or done).",
        "headers": {
            "Location": {
                "description": "`/v1/jobs/{id}`: where to follow the job.",
                "schema": {"type": "string"},
            }
        },
    }
}


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobOut,
    responses={**QUEUED, **problem_responses(SUBMIT_OUTCOMES)},
)
async def submit_job(
    body: JobIn,
    jobs: Jobs,
    caller: Runner,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Queues a run of the plugin on the input (checked against its schema now) and answers
    at once with the job, `queued`, and its `Location`. Whatever the plugin does later is
    the job's `reason`, never an error of this call."""
    job = await jobs.submit(caller, body.plugin, body.input, idempotency_key)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobOut.of(job)


@router.get("/jobs/{job_id}", responses=problem_responses(GET_OUTCOMES))
async def get_job(job_id: JobId, jobs: Jobs, caller: Runner) -> JobOut:
    """The job: its state, last progress and, once done, how it ended. Callers see their own
    jobs; `plugins:admin` sees every one (a job from the bus is owned by `bus:<source>`)."""
    return JobOut.of(await jobs.get(caller, job_id))
