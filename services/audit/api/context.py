"""What the routes work with: the use cases (built by `app.py`), the caller, shared parameters."""

from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import AwareDatetime

from outrigger.auth import Principal, Scopes, require_scope
from services.audit.domain.rules import TENANT_PATTERN, TOKEN_PATTERN
from services.audit.usecases import AuditService, Caller, Export, Verifier


# `async def`, so FastAPI does not run them in a worker thread (see the event store's context)
async def _service(request: Request) -> AuditService:
    service: AuditService = request.app.state.audit
    return service


async def _verifier(request: Request) -> Verifier:
    verifier: Verifier = request.app.state.audit_verifier
    return verifier


async def _export(request: Request) -> Export:
    export: Export = request.app.state.audit_export
    return export


def _caller(scope: str) -> object:
    async def caller(principal: Annotated[Principal, require_scope(scope)]) -> Caller:
        return Caller(principal.subject)

    return Depends(caller)


Service = Annotated[AuditService, Depends(_service)]
Verifying = Annotated[Verifier, Depends(_verifier)]
Exporting = Annotated[Export, Depends(_export)]
Reader = Annotated[Caller, _caller(Scopes.AUDIT_READ)]
Writer = Annotated[Caller, _caller(Scopes.AUDIT_WRITE)]
Revealer = Annotated[Caller, _caller(Scopes.AUDIT_REVEAL)]
Admin = Annotated[Caller, _caller(Scopes.ADMIN)]

Tenant = Annotated[
    str,
    Query(
        description="The tenant whose log is meant: 1-63 of `a-z 0-9 _ -`.",
        pattern=TENANT_PATTERN,
    ),
]
Source = Annotated[
    str | None,
    Query(
        description="The record's source; needed only when several sources sent the same id.",
        pattern=TOKEN_PATTERN,
    ),
]
From = Annotated[
    AwareDatetime | None,
    Query(alias="from", description="Only records whose `time` is at or after this moment."),
]
To = Annotated[
    AwareDatetime | None,
    Query(alias="to", description="Only records whose `time` is before this moment."),
]
