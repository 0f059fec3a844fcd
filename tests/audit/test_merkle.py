"""The service's tree against RFC 9162: the published Certificate Transparency vectors, and the
independent verifier in `rfc9162.py` over every shape up to 70 leaves."""

from __future__ import annotations

import itertools

import pytest

from outrigger import merkle
from tests.audit import rfc9162

# The Certificate Transparency reference leaves and their roots for sizes 1..8, as published
# with RFC 6962's reference implementation (the hashing is unchanged in RFC 9162).
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
INCLUSION = {
    (0, 8): (
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ),
    (5, 8): (
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ),
}
CONSISTENCY = {
    (2, 8): (
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ),
    (6, 8): (
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ),
    (2, 5): (
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ),
}


class Tree:
    """The service's tree held in memory: every node `extend` creates, by coordinate."""

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        created, self.frontier = merkle.extend(0, [], leaf_hashes)
        self.nodes = dict(created)
        self.size = len(leaf_hashes)

    def root(self, size: int) -> bytes:
        return merkle.fold([self.nodes[n] for n in merkle.root_nodes(size)])

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return merkle.resolve(merkle.inclusion_nodes(index, size), self.nodes)

    def consistency(self, first: int, second: int) -> list[bytes]:
        return merkle.resolve(merkle.consistency_nodes(first, second), self.nodes)


def test_the_hashes_and_roots_are_the_published_ones() -> None:
    hashes = [merkle.leaf_hash(data) for data in LEAVES]
    tree = Tree(hashes)
    assert merkle.fold([]) == bytes.fromhex(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    for size in range(1, 9):
        assert tree.root(size) == ROOTS[size - 1]
    assert merkle.fold(tree.frontier) == ROOTS[7]


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_proofs_are_the_published_ones(index: int, size: int) -> None:
    tree = Tree([merkle.leaf_hash(data) for data in LEAVES])
    assert [h.hex() for h in tree.inclusion(index, size)] == list(INCLUSION[index, size])


@pytest.mark.parametrize(("first", "second"), sorted(CONSISTENCY))
def test_consistency_proofs_are_the_published_ones(first: int, second: int) -> None:
    tree = Tree([merkle.leaf_hash(data) for data in LEAVES])
    assert [h.hex() for h in tree.consistency(first, second)] == list(CONSISTENCY[first, second])


def test_every_proof_of_every_shape_satisfies_the_independent_verifier() -> None:
    hashes = [rfc9162.leaf(i.to_bytes(2, "big")) for i in range(70)]
    tree = Tree(hashes)
    for size in range(1, len(hashes) + 1):
        root = tree.root(size)
        assert root == rfc9162.mth(hashes[:size])
        for index in range(size):
            proof = tree.inclusion(index, size)
            assert rfc9162.verify_inclusion(index, size, hashes[index], proof, root)
            assert not rfc9162.verify_inclusion(index, size, hashes[index - 1], proof, root) or (
                size == 1
            )
        for first in range(1, size + 1):
            proof = tree.consistency(first, size)
            assert rfc9162.verify_consistency(first, size, tree.root(first), root, proof)


def test_a_tree_grown_in_batches_equals_one_grown_at_once() -> None:
    hashes = [rfc9162.leaf(bytes([i])) for i in range(50)]
    size, frontier, nodes = 0, list[bytes](), dict[merkle.Node, bytes]()
    for batch in ([hashes[0]], hashes[1:4], hashes[4:4], hashes[4:31], hashes[31:50]):
        created, frontier = merkle.extend(size, frontier, batch)
        nodes.update(created)
        size += len(batch)
    assert nodes == Tree(hashes).nodes
    assert merkle.fold(frontier) == rfc9162.mth(hashes)


def test_completed_nodes_are_the_inner_nodes_extend_creates() -> None:
    hashes = [rfc9162.leaf(bytes([i])) for i in range(50)]
    size, frontier, inner = 0, list[bytes](), dict[tuple[int, int], bytes]()
    for batch in ([hashes[0]], hashes[1:4], hashes[4:4], hashes[4:31], hashes[31:50]):
        completed, frontier = merkle.completed_nodes(size, frontier, batch)
        assert not completed.keys() & inner.keys()
        inner.update(completed)
        size += len(batch)
    expected = {(n.level, n.index): h for n, h in Tree(hashes).nodes.items() if n.level}
    assert inner == expected
    assert merkle.fold(frontier) == rfc9162.mth(hashes)


def test_every_split_into_batches_completes_each_inner_node_once_with_its_hash() -> None:
    hashes = [rfc9162.leaf(bytes([i])) for i in range(40)]
    expected = {
        (level, index): rfc9162.mth(hashes[index << level : (index + 1) << level])
        for level in range(1, 6)
        for index in range(40 >> level)
    }
    for first, second in itertools.combinations(range(0, 41, 2), 2):
        size, frontier, inner = 0, list[bytes](), dict[tuple[int, int], bytes]()
        for batch in (hashes[:first], hashes[first:second], hashes[second:]):
            completed, frontier = merkle.completed_nodes(size, frontier, iter(batch))
            assert not completed.keys() & inner.keys()
            inner.update(completed)
            size += len(batch)
            assert merkle.fold(frontier) == rfc9162.mth(hashes[:size])
        assert inner == expected


def test_proofs_outside_the_tree_are_refused() -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        merkle.inclusion_nodes(8, 8)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_nodes(5, 3)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_nodes(0, 3)


def test_the_kit_verifiers_agree_with_the_independent_ones() -> None:
    hashes = [rfc9162.leaf(i.to_bytes(2, "big")) for i in range(40)]
    tree = Tree(hashes)
    for size in range(1, 41):
        root = tree.root(size)
        for index in range(size):
            proof = tree.inclusion(index, size)
            assert merkle.verify_inclusion(index, size, hashes[index], proof, root)
            assert not merkle.verify_inclusion(
                index, size, hashes[index], proof[:-1] or [root], root
            )
            assert not merkle.verify_inclusion(index, size, hashes[index], [*proof, root], root)
        for first in range(1, size + 1):
            proof = tree.consistency(first, size)
            good = merkle.verify_consistency(first, size, tree.root(first), root, proof)
            assert good == rfc9162.verify_consistency(first, size, tree.root(first), root, proof)
            assert good
            if proof:
                bent = [proof[0][::-1], *proof[1:]]
                assert not merkle.verify_consistency(first, size, tree.root(first), root, bent)
