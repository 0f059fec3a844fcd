"""Subjects: forgetting one erases its personal data from every event (crypto-shredding)."""

from typing import Annotated

from fastapi import APIRouter, Path

from outrigger.http import ServiceRoute
from services.event_store.api.context import Admin, Service

router = APIRouter(prefix="/v1/subjects", tags=["subjects"], route_class=ServiceRoute)


@router.delete("/{subject}", status_code=204)
async def forget(
    subject: Annotated[str, Path(min_length=1, max_length=200)], service: Service, caller: Admin
) -> None:
    """Deletes the subject's key: its sensitive fields read back as the erased marker, for good.

    Idempotent: forgetting a subject again (or one never seen) changes nothing.
    """
    await service.forget_subject(subject, caller)
