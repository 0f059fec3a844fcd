"""The Merkle tree of RFC 9162 (Certificate Transparency 2.0), section 2.1, over stored nodes.

A tenant's records are the leaves, in index order. Every hash the service ever needs is a
*perfect* subtree: `Node(level, index)` covers leaves `[index * 2**level, (index + 1) * 2**level)`;
level 0 is the leaf hashes. A tree of any size is the fold of the perfect subtrees its size's
binary digits name (`decompose`), so the stored nodes answer every root and proof without
touching a record: they survive retention and erasure, which only touch records.

Proofs are computed in two steps, so an adapter fetches all it needs in one query:
`inclusion_nodes` / `consistency_nodes` name the nodes, `resolve` folds each group into one hash.
`verify_inclusion` and `verify_consistency` check proofs, as RFC 9162 2.1.3.2 and 2.1.4.2 say,
for anyone holding a checkpoint (the SDK, `outrigger audit verify`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


@dataclass(frozen=True, slots=True, order=True)
class Node:
    """The perfect subtree over leaves `[index << level, (index + 1) << level)`."""

    level: int
    index: int

    @property
    def first(self) -> int:
        return self.index << self.level

    @property
    def end(self) -> int:
        return (self.index + 1) << self.level


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def decompose(first: int, end: int) -> list[Node]:
    """The perfect subtrees whose fold is MTH(D[first:end]), largest first.

    `first` must be a multiple of the largest power of two below `end - first` (true of every
    range the RFC's recursion visits, and of `[0, n)`).
    """
    nodes: list[Node] = []
    while first < end:
        size = end - first
        level = size.bit_length() - 1
        if size != 1 << level:
            level = (size - 1).bit_length() - 1  # the largest power of two strictly below size
        nodes.append(Node(level, first >> level))
        first += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the hashes of its `decompose` nodes, in that order."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def root_nodes(size: int) -> list[Node]:
    return decompose(0, size)


def inclusion_nodes(index: int, size: int) -> list[list[Node]]:
    """PATH(index, D[size]) of RFC 9162 2.1.3.1, each proof hash as the nodes it folds from."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[list[Node]] = []
    first, end = 0, size
    while end - first > 1:
        split = first + _largest_power_below(end - first)
        if index < split:
            path.append(decompose(split, end))
            end = split
        else:
            path.append(decompose(first, split))
            first = split
    path.reverse()  # the RFC lists the path from the leaf up
    return path


def consistency_nodes(old_size: int, new_size: int) -> list[list[Node]]:
    """PROOF(old_size, D[new_size]) of RFC 9162 2.1.4.1, each hash as the nodes it folds from."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    proof: list[list[Node]] = []
    first, end, m, whole = 0, new_size, old_size, True
    while m != end - first:  # m counts from `first`, as in the RFC's recursion
        k = _largest_power_below(end - first)
        if m <= k:
            proof.append(decompose(first + k, end))
            end = first + k
        else:
            proof.append(decompose(first, first + k))
            first += k
            m -= k
            whole = False
    if not whole:
        proof.append(decompose(first, end))
    proof.reverse()
    return proof


def resolve(groups: Sequence[Sequence[Node]], hashes: Mapping[Node, bytes]) -> list[bytes]:
    """Each group's folded hash; KeyError if a node is missing from `hashes`."""
    return [fold([hashes[node] for node in group]) for group in groups]


def extend(
    size: int, frontier: Sequence[bytes], leaves: Iterable[bytes]
) -> tuple[list[tuple[Node, bytes]], list[bytes]]:
    """Appends leaf hashes to a tree of `size` whose `root_nodes(size)` hash to `frontier`.

    Returns every node the append completes (the leaves themselves included, at level 0) and the
    new frontier; `fold(frontier)` is the new root.
    """
    leaves = list(leaves)
    inner, new_frontier = completed_nodes(size, frontier, leaves)
    created = [(Node(0, index), digest) for index, digest in enumerate(leaves, start=size)]
    created += [(Node(level, index), digest) for (level, index), digest in inner.items()]
    return created, new_frontier


def completed_nodes(
    size: int, frontier: Sequence[bytes], leaves: Iterable[bytes]
) -> tuple[dict[tuple[int, int], bytes], list[bytes]]:
    """The inner nodes (level >= 1) appending `leaves` completes, by `(level, index)`, and the
    new frontier: `extend` without its `Node`s, the quick path for a verifier comparing a
    million of them with the stored ones.
    """
    # Level by level: the nodes of one level pair up into the next, a left node waiting in the
    # frontier first; a last node without its right sibling waits in the new frontier.
    waiting = {node.level: digest for node, digest in zip(root_nodes(size), frontier, strict=True)}
    inner: dict[tuple[int, int], bytes] = {}
    sha256 = hashlib.sha256
    level, at, hashes = 0, size, list(leaves)  # `hashes` are the nodes at `level` from `at` on
    while hashes:
        sibling = waiting.pop(level, None)
        if sibling is not None:
            hashes.insert(0, sibling)
            at -= 1
        if len(hashes) & 1:
            waiting[level] = hashes.pop()
        pairs = zip(hashes[::2], hashes[1::2], strict=True)
        hashes = [sha256(NODE_PREFIX + left + right).digest() for left, right in pairs]
        level, at = level + 1, at >> 1
        inner.update(zip(zip(repeat(level), range(at, at + len(hashes))), hashes, strict=True))
    return inner, [waiting[level] for level in sorted(waiting, reverse=True)]


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 2.1.3.2); ValueError if it cannot lead
    to any root of that size."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise ValueError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("the inclusion proof is shorter than the tree is deep")
    return result


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """True if `proof` shows leaf hash `leaf` at `index` of the tree of `size` with `root`."""
    try:
        return root_from_inclusion(index, size, leaf, proof) == root
    except ValueError:
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True if `proof` shows the tree of `old_size` with `old_root` is a prefix of the tree of
    `new_size` with `new_root` (RFC 9162 2.1.4.2; any tree is consistent with the empty one)."""
    if old_size == 0:
        return not proof and new_size >= 0
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old = new = path[0]
    for hash_ in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old, new = node_hash(hash_, old), node_hash(hash_, new)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new = node_hash(new, hash_)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and old == old_root and new == new_root


def _largest_power_below(n: int) -> int:
    """The largest power of two strictly less than `n` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)
