"""Export: a tenant's records with everything needed to check them offline, as NDJSON.

The first line is a checkpoint covering the tree at the start of the export (issued then if the
tree grew since the latest), `{"kind": "checkpoint", ...}`; then one line per record in the time
range, oldest first: `{"kind": "record", "index", "leaf", "leaf_hash", "proof"}`, `leaf` being
the stored body exactly (a JSON string whose UTF-8 bytes are what was hashed) and `proof` its
RFC 9162 inclusion proof against that checkpoint. `outrigger audit verify FILE --public-key KEY`
re-hashes each leaf, checks each proof against the checkpoint's root and the checkpoint's
signature, and names the first line that fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from outrigger import merkle
from services.audit.domain import rules
from services.audit.usecases.checkpoints import checkpoint_document
from services.audit.usecases.service import utc

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from datetime import datetime

    from services.audit.domain.models import Checkpoint, StoredRecord
    from services.audit.domain.port import AuditLog
    from services.audit.usecases.checkpoints import Checkpoints

CHUNK = 1000
_OPTIONS = orjson.OPT_UTC_Z


class Export:
    def __init__(self, log: AuditLog, checkpoints: Checkpoints) -> None:
        self._log = log
        self._checkpoints = checkpoints

    async def open(
        self, tenant: str, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncIterator[bytes]:
        """The export's lines; NotFound (before any line) for a tenant without records."""
        rules.check_tenant(tenant)
        checkpoint = await self._checkpoints.issue(tenant)
        first = await self._log.retained_from(tenant)
        return self._lines(checkpoint, first, utc(since), utc(until))

    async def _lines(
        self, checkpoint: Checkpoint, first: int, since: datetime | None, until: datetime | None
    ) -> AsyncIterator[bytes]:
        document = {"kind": "checkpoint", **checkpoint_document(checkpoint, self._verifier_key)}
        yield orjson.dumps(document, option=_OPTIONS) + b"\n"
        tenant, size = checkpoint.tenant, checkpoint.size
        for start in range(first, size, CHUNK):
            records = await self._log.records(tenant, start, min(start + CHUNK, size))
            chosen = [stored for stored in records if _within(stored, since, until)]
            if not chosen:
                continue
            paths = {stored.index: merkle.inclusion_nodes(stored.index, size) for stored in chosen}
            needed = {node for groups in paths.values() for group in groups for node in group}
            hashes = await self._log.nodes(tenant, needed)
            lines = [
                orjson.dumps(
                    {
                        "kind": "record",
                        "index": stored.index,
                        "leaf": stored.leaf.body.decode(),
                        "leaf_hash": stored.leaf.hash.hex(),
                        "proof": [h.hex() for h in merkle.resolve(paths[stored.index], hashes)],
                    }
                )
                for stored in chosen
            ]
            yield b"\n".join(lines) + b"\n"

    @property
    def _verifier_key(self) -> str:
        return self._checkpoints.verifier_key


def _within(stored: StoredRecord, since: datetime | None, until: datetime | None) -> bool:
    time = stored.leaf.record.time
    return (since is None or time >= since) and (until is None or time < until)
