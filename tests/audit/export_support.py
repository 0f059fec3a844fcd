"""A tenant's log built in the test, as the service shapes it: leaves, a signed checkpoint, proofs
and export lines (`GET /v1/export`), for testing what reads them without a service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from outrigger import merkle
from outrigger.notes import NoteSigner, checkpoint_body

ORIGIN = "outrigger.audit"
T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def leaf_body(tenant: str, n: int, **changes: Any) -> bytes:
    """A leaf body as the service stores one: canonical JSON (keys sorted, no spaces)."""
    record = {
        "id": f"rec-{n}",
        "source": "tests",
        "type": "tests.thing.done",
        "time": T0 + timedelta(seconds=n),
        "actor": "ada",
        "action": "do",
        "resource": f"thing/{n}",
        "outcome": "success",
        "tenant": tenant,
        "data": {"n": n, "card": "enc:v1:opaque"},
        "sensitive": ["card"],
        "subject": None,
        "recorded_at": T0 + timedelta(seconds=n, milliseconds=5),
        **changes,
    }
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)


@dataclass
class Log:
    """A tenant's tree of `leaves`, its nodes kept as the service keeps them."""

    tenant: str
    signer: NoteSigner
    leaves: list[bytes] = field(default_factory=list)
    nodes: dict[merkle.Node, bytes] = field(default_factory=dict)
    frontier: list[bytes] = field(default_factory=list)

    @classmethod
    def of(cls, tenant: str, size: int, signer: NoteSigner | None = None) -> Log:
        log = cls(tenant, signer or NoteSigner.generate(ORIGIN))
        log.append(*(leaf_body(tenant, n) for n in range(size)))
        return log

    def append(self, *bodies: bytes) -> None:
        created, self.frontier = merkle.extend(
            len(self.leaves), self.frontier, [merkle.leaf_hash(body) for body in bodies]
        )
        self.nodes.update(created)
        self.leaves.extend(bodies)

    @property
    def root(self) -> bytes:
        return merkle.fold(self.frontier)

    def checkpoint(self, issued_at: datetime = T0) -> dict[str, Any]:
        size = len(self.leaves)
        note = self.signer.sign(checkpoint_body(f"{ORIGIN}/{self.tenant}", size, self.root))
        return {
            "tenant": self.tenant,
            "tree_size": size,
            "root_hash": self.root.hex(),
            "issued_at": issued_at.isoformat().replace("+00:00", "Z"),
            "note": note,
            "verifier_key": self.signer.verifier_key,
        }

    def proof(self, index: int, size: int | None = None) -> list[str]:
        size = len(self.leaves) if size is None else size
        path = merkle.resolve(merkle.inclusion_nodes(index, size), self.nodes)
        return [digest.hex() for digest in path]

    def consistency(self, from_size: int, to_size: int) -> list[str]:
        path = merkle.resolve(merkle.consistency_nodes(from_size, to_size), self.nodes)
        return [digest.hex() for digest in path]

    def export(self, first: int = 0, end: int | None = None) -> list[str]:
        """The export's NDJSON lines: the checkpoint, then records `[first, end)`."""
        lines = [orjson.dumps({"kind": "checkpoint", **self.checkpoint()}).decode()]
        for index in range(first, len(self.leaves) if end is None else end):
            body = self.leaves[index]
            line = {
                "kind": "record",
                "index": index,
                "leaf": body.decode(),
                "leaf_hash": merkle.leaf_hash(body).hex(),
                "proof": self.proof(index),
            }
            lines.append(orjson.dumps(line).decode())
        return lines
