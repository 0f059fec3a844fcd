"""What an append writes, worked out the same way by both adapters once they hold the tenants'
trees: which leaves are retries, the index each new leaf takes, the nodes `merkle.extend`
completes and each tree's new size."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from outrigger import merkle
from outrigger.errors import OutriggerError
from services.audit.domain.models import Appended

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from outrigger.merkle import Node
    from services.audit.domain.models import Leaf


@dataclass(frozen=True, slots=True)
class NewLeaf:
    index: int
    leaf: Leaf


@dataclass(slots=True)
class Plan:
    answers: list[Appended] = field(default_factory=list)
    leaves: list[NewLeaf] = field(default_factory=list)
    nodes: list[tuple[str, Node, bytes]] = field(default_factory=list)  # (tenant, node, hash)
    sizes: dict[str, int] = field(default_factory=dict)  # the new size of each grown tree


def tenants_of(leaves: Sequence[Leaf]) -> list[str]:
    """The batch's tenants in the order their trees are locked (sorted: no deadlock)."""
    return sorted({leaf.record.tenant for leaf in leaves})


def frontier_nodes(sizes: Mapping[str, int]) -> list[tuple[str, Node]]:
    """The nodes whose hashes each tree's next append extends (`merkle.root_nodes`)."""
    return [(tenant, node) for tenant, size in sizes.items() for node in merkle.root_nodes(size)]


def plan(
    leaves: Sequence[Leaf],
    stored: Mapping[tuple[str, str], Appended],
    sizes: Mapping[str, int],
    frontier: Mapping[tuple[str, Node], bytes],
) -> Plan:
    """The append of `leaves` to trees of `sizes` (their `frontier_nodes` hashed in `frontier`),
    `stored` holding the keys of the batch stored already."""
    result = Plan()
    seen = dict(stored)
    added: dict[str, list[NewLeaf]] = {}
    for leaf in leaves:
        record = leaf.record
        first = seen.get(leaf.key)
        if first is not None:
            result.answers.append(_duplicate(first))
            continue
        tenant_leaves = added.setdefault(record.tenant, [])
        index = sizes[record.tenant] + len(tenant_leaves)
        new = NewLeaf(index, leaf)
        tenant_leaves.append(new)
        result.leaves.append(new)
        answer = Appended(record.source, record.id, record.tenant, index, leaf.hash, False)
        seen[leaf.key] = answer
        result.answers.append(answer)
    for tenant, new_leaves in added.items():
        size = sizes[tenant]
        hashes = _frontier(tenant, size, frontier)
        created, _ = merkle.extend(size, hashes, (new.leaf.hash for new in new_leaves))
        result.nodes.extend((tenant, node, digest) for node, digest in created)
        result.sizes[tenant] = size + len(new_leaves)
    return result


def _duplicate(first: Appended) -> Appended:
    return Appended(first.source, first.id, first.tenant, first.index, first.leaf_hash, True)


def _frontier(tenant: str, size: int, frontier: Mapping[tuple[str, Node], bytes]) -> list[bytes]:
    try:
        return [frontier[tenant, node] for node in merkle.root_nodes(size)]
    except KeyError as exc:
        raise OutriggerError(
            f"the tree of tenant {tenant!r} ({size} records) lacks its node {exc.args[0][1]}: "
            "the audit nodes were altered outside the service; run verify"
        ) from None
