"""Merkle trees that OpenZeppelin's ``MerkleProof.verify`` accepts.

Leaves are 32-byte values; each is ``keccak256(bytes.concat(keccak256(abi.encode(...))))``
(the double hash of OpenZeppelin's StandardMerkleTree, so a leaf can never be mistaken
for an inner node). Inner nodes hash their two children in sorted order (OpenZeppelin's
commutative keccak), so a proof is just the list of siblings from leaf to root. A level
with an odd node carries it up unchanged.

Used for result proofs (a job's output files, exit code and log digest) and for storage
audits (the chunks of a shard).
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi.abi import encode
from eth_utils.crypto import keccak

ZERO = b"\x00" * 32


def leaf(types: Sequence[str], values: Sequence[object]) -> bytes:
    """The double-hashed leaf of ``abi.encode(values)``."""
    return keccak(keccak(encode(list(types), list(values))))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first, root last (one level of ZERO when empty)."""
    if not leaves:
        return [[ZERO]]
    level = list(leaves)
    out = [level]
    while len(level) > 1:
        nxt = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        out.append(nxt)
        level = nxt
    return out


def root(leaves: Sequence[bytes]) -> bytes:
    return levels(leaves)[-1][0]


def proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Siblings from leaf `index` up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is outside a tree of {len(leaves)} leaves")
    out: list[bytes] = []
    for level in levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            out.append(level[sibling])
        index //= 2
    return out


def verify(proof_: Sequence[bytes], root_: bytes, leaf_: bytes) -> bool:
    node = leaf_
    for sibling in proof_:
        node = hash_pair(node, sibling)
    return node == root_


# ------------------------------------------------------------------ storage chunks

CHUNK_BYTES = 1024


def chunk_leaf(index: int, chunk: bytes) -> bytes:
    """Leaf of one shard chunk: ``abi.encode(uint256 index, bytes32 keccak256(chunk))``."""
    return leaf(["uint256", "bytes32"], [index, keccak(chunk)])


def chunk_leaves(data: bytes, chunk_bytes: int = CHUNK_BYTES) -> list[bytes]:
    """Leaves of a shard cut into `chunk_bytes` pieces (one empty chunk when empty)."""
    pieces = [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)] or [b""]
    return [chunk_leaf(i, c) for i, c in enumerate(pieces)]
