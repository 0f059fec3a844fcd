"""Proofs and checkpoints: what anyone holding a checkpoint needs to check the log."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from outrigger.http import ServiceRoute, problem_responses
from services.audit.api.context import Reader, Service, Tenant, Writer
from services.audit.api.models import CheckpointOut, ConsistencyProofOut, InclusionProofOut
from services.audit.domain.models import DEFAULT_TENANT
from services.audit.domain.rules import MAX_INDEX

proofs = APIRouter(prefix="/v1/proofs", tags=["proofs"], route_class=ServiceRoute)
checkpoints = APIRouter(prefix="/v1/checkpoints", tags=["checkpoints"], route_class=ServiceRoute)

Index = Annotated[int, Query(ge=0, le=MAX_INDEX)]
Size = Annotated[
    int | None,
    Query(ge=1, le=MAX_INDEX, description="A tree size (default: the latest checkpoint's)."),
]
BEYOND = "The tree (or the leaf) asked for is beyond the tenant's tree, or it has no checkpoint."


@proofs.get("/inclusion", responses=problem_responses({404: BEYOND}))
async def inclusion(
    index: Index,
    service: Service,
    _: Reader,
    tenant: Tenant = DEFAULT_TENANT,
    tree_size: Size = None,
) -> InclusionProofOut:
    """The RFC 9162 inclusion proof of leaf `index` in the tenant's tree of `tree_size`."""
    return InclusionProofOut.of(await service.inclusion(tenant, index, tree_size))


@proofs.get("/consistency", responses=problem_responses({404: BEYOND}))
async def consistency(
    from_size: Annotated[int, Query(ge=1, le=MAX_INDEX)],
    service: Service,
    _: Reader,
    tenant: Tenant = DEFAULT_TENANT,
    to_size: Size = None,
) -> ConsistencyProofOut:
    """The RFC 9162 proof that the tenant's tree of `from_size` is a prefix of the tree of
    `to_size`."""
    return ConsistencyProofOut.of(await service.consistency(tenant, from_size, to_size))


@checkpoints.get("/latest", responses=problem_responses({404: "No checkpoint yet."}))
async def latest(service: Service, _: Reader, tenant: Tenant = DEFAULT_TENANT) -> CheckpointOut:
    """The tenant's latest signed checkpoint."""
    checkpoint = await service.checkpoints.latest(tenant)
    return CheckpointOut.of(checkpoint, service.checkpoints.verifier_key)


@checkpoints.post(
    "",
    status_code=201,
    response_model=CheckpointOut,
    responses=problem_responses({404: "The tenant has no records yet."}),
)
async def issue(service: Service, _: Writer, tenant: Tenant = DEFAULT_TENANT) -> Response:
    """A checkpoint of the tenant's tree as it is now (the latest one if it did not grow)."""
    checkpoint = await service.checkpoints.issue(tenant)
    out = CheckpointOut.of(checkpoint, service.checkpoints.verifier_key)
    return Response(out.model_dump_json(), 201, media_type="application/json")
