"""The one contract suite of the audit log's storage port (`AuditLog`), run against every
adapter: a subclass implements `make_adapter()` and names its `WRITE_ERROR`; everything else is
shared. Tests use tenants of their own, so they never depend on each other or on what else the
database holds (retention, which drops months of every tenant, keeps to 2001).
"""

from __future__ import annotations

from tests.audit.contract_appends import AppendContract
from tests.audit.contract_reads import CheckpointContract, ReadContract
from tests.audit.contract_retention import RetentionContract


class AuditLogContract(AppendContract, ReadContract, CheckpointContract, RetentionContract):
    """Appends, proofs from the nodes, pages, finds, scans, checkpoints and retention."""
