"""The audit service's HTTP API under `/v1` (scopes `audit:read`, `audit:write`,
`audit:reveal`)."""

from services.audit.api import proofs, records, verification

ROUTERS = (records.router, proofs.proofs, proofs.checkpoints, verification.router)

__all__ = ["ROUTERS"]
