"""Subjects: forgetting one erases its sensitive fields from every record (crypto-shredding),
while every proof and checkpoint stays valid."""

from typing import Annotated

from fastapi import APIRouter, Path

from outrigger.http import ServiceRoute
from services.audit.api.context import Admin, Service, Tenant
from services.audit.domain.models import DEFAULT_TENANT
from services.audit.domain.rules import TOKEN_PATTERN

router = APIRouter(prefix="/v1/subjects", tags=["subjects"], route_class=ServiceRoute)

# `:path`: a subject may hold `/`, like a record's id (sent as `%2F`)
Subject = Annotated[
    str,
    Path(
        pattern=TOKEN_PATTERN,
        examples=["customer-9"],
        description="The data subject, percent-encoded: a record's `subject`, `/` included.",
    ),
]


@router.delete("/{subject:path}", status_code=204)
async def forget(
    subject: Subject,
    service: Service,
    caller: Admin,
    tenant: Tenant = DEFAULT_TENANT,
) -> None:
    """Deletes the subject's key: its sensitive fields read back as the erased marker, masked or
    revealed, in every tenant, for good. The erasure is recorded in `tenant`'s log (type
    `audit.subject.forgotten`); the stored leaves do not change, so every proof, checkpoint and
    export still verifies.

    Idempotent: forgetting a subject again (or one never seen) changes nothing but the log.
    """
    await service.forget(subject, tenant, caller)
