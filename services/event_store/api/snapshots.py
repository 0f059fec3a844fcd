"""Snapshots: the latest state folded from a stream, one per stream."""

from fastapi import APIRouter

from outrigger.http import ServiceRoute, problem_responses
from services.event_store.api.context import Reader, Service, StreamId, Writer
from services.event_store.api.models import SnapshotIn, SnapshotOut

router = APIRouter(prefix="/v1/streams", tags=["snapshots"], route_class=ServiceRoute)


@router.put(
    "/{stream_id}/snapshot",
    responses=problem_responses(
        {
            404: "No such stream, or it was deleted.",
            409: "The stream has no such version (now): see `actual_version`.",
            410: "The stream was tombstoned.",
        }
    ),
)
async def save(stream_id: StreamId, body: SnapshotIn, service: Service, _: Writer) -> SnapshotOut:
    """Stores `state` as folded up to `version` (a version the stream has), replacing the last."""
    return SnapshotOut.of(await service.save_snapshot(stream_id, body.version, body.state))


@router.get(
    "/{stream_id}/snapshot",
    responses=problem_responses({404: "No snapshot.", 410: "The stream was tombstoned."}),
)
async def load(stream_id: StreamId, service: Service, _: Reader) -> SnapshotOut:
    """The stream's latest snapshot; fold the events after its `version` on top of it."""
    return SnapshotOut.of(await service.load_snapshot(stream_id))
