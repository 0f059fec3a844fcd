"""The audit service's HTTP API under `/v1` (scopes `audit:read`, `audit:write`,
`audit:reveal`, and `admin` to forget a subject)."""

from services.audit.api import proofs, records, subjects, verification

ROUTERS = (
    records.router,
    proofs.proofs,
    proofs.checkpoints,
    verification.router,
    subjects.router,
)

__all__ = ["ROUTERS"]
