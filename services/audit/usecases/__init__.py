"""The audit service's use-case room: every record, query, proof and background job passes here.

`AuditService` serves the API and the queue consumer; `Checkpoints` signs tree heads and
`CheckpointLoop` issues and publishes them on the elected replica; `Verifier` recomputes a
tenant's tree; `Export` streams records with their proofs; `Retention` drops old records.
"""

from services.audit.usecases.checkpoints import CheckpointLoop, Checkpoints, checkpoint_document
from services.audit.usecases.export import Export
from services.audit.usecases.fields import SensitiveFields
from services.audit.usecases.retention import Retention
from services.audit.usecases.service import AuditService, Caller
from services.audit.usecases.verify import Verifier

__all__ = [
    "AuditService",
    "Caller",
    "CheckpointLoop",
    "Checkpoints",
    "Export",
    "Retention",
    "SensitiveFields",
    "Verifier",
    "checkpoint_document",
]
