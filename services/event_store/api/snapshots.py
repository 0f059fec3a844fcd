"""Snapshots: the latest state folded from a stream, one per stream."""

from fastapi import APIRouter

from services.event_store.api.context import Reader, Service, StreamId, Writer
from services.event_store.api.models import SnapshotIn, SnapshotOut

router = APIRouter(prefix="/v1/streams", tags=["snapshots"])


@router.put("/{stream_id}/snapshot")
async def save(stream_id: StreamId, body: SnapshotIn, service: Service, _: Writer) -> SnapshotOut:
    """Stores `state` as folded up to `version` (a version the stream has), replacing the last."""
    return SnapshotOut.of(await service.save_snapshot(stream_id, body.version, body.state))


@router.get("/{stream_id}/snapshot", responses={404: {"description": "No snapshot."}})
async def load(stream_id: StreamId, service: Service, _: Reader) -> SnapshotOut:
    """The stream's latest snapshot; fold the events after its `version` on top of it."""
    return SnapshotOut.of(await service.load_snapshot(stream_id))
