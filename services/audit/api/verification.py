"""Verify and export: the log recomputed by the service, or shipped to be checked offline."""

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from outrigger.http import ServiceRoute, problem_responses
from services.audit.api.context import Exporting, From, Reader, Tenant, To, Verifying
from services.audit.api.models import VerificationOut
from services.audit.domain.models import DEFAULT_TENANT

router = APIRouter(prefix="/v1", tags=["verification"], route_class=ServiceRoute)
NDJSON = "application/x-ndjson"


@router.get("/verify")
async def verify(
    verifier: Verifying, _: Reader, tenant: Tenant = DEFAULT_TENANT
) -> VerificationOut:
    """Recomputes the tenant's tree from its rows and checks every checkpoint; `mismatch`
    names the first place where they disagree (`ok` is false then)."""
    return VerificationOut.of(await verifier.verify(tenant))


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {NDJSON: {"schema": {"type": "string"}}},
            "description": 'One JSON object a line: `{"kind": "checkpoint", ...}` first, then '
            '`{"kind": "record", "index", "leaf", "leaf_hash", "proof"}` per record, oldest first.',
        },
        **problem_responses({404: "The tenant has no records."}),
    },
)
async def export(
    export: Exporting,
    _: Reader,
    since: From = None,
    until: To = None,
    tenant: Tenant = DEFAULT_TENANT,
) -> StreamingResponse:
    """The tenant's records in the time range with their inclusion proofs against a checkpoint
    covering them all, as NDJSON; check it offline with `outrigger audit verify FILE
    --public-key KEY`."""
    lines = await export.open(tenant, since, until)
    return StreamingResponse(lines, media_type=NDJSON)
