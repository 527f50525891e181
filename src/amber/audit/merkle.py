"""RFC 6962 / RFC 9162 Merkle tree hashing and proofs: pure functions, no I/O.

leaf hash  = SHA-256(0x00 || entry)
node hash  = SHA-256(0x01 || left || right)
MTH of n leaves splits at k, the largest power of two smaller than n.
The verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from ..errors import ProofError

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hashes(entries: list[bytes]) -> list[bytes]:
    """The leaf hash of each entry (one pass, for a whole log)."""
    sha = hashlib.sha256
    return [sha(b"\x00" + e).digest() for e in entries]


def tile_roots(hashes: list[bytes], width: int) -> list[bytes]:
    """The root of each complete group of `width` (a power of two) hashes: the level above
    them in a tiled tree."""
    sha = hashlib.sha256
    out = []
    for k in range(0, len(hashes) - width + 1, width):
        level = hashes[k : k + width]
        while len(level) > 1:
            level = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        out.append(level[0])
    return out


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def root(leaves: list[bytes]) -> bytes:
    """MTH over leaf hashes (not entries)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    # iterative, same result as the recursive definition: combine complete subtrees
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(leaves: list[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962 2.1.1, over leaf hashes."""
    return inclusion_path(lambda lo, hi: root(leaves[lo:hi]), len(leaves), index)


def consistency_proof(leaves: list[bytes], m: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 2.1.2, over leaf hashes."""
    return consistency_path(lambda lo, hi: root(leaves[lo:hi]), len(leaves), m)


def inclusion_path(mth: Callable[[int, int], bytes], n: int, index: int) -> list[bytes]:
    """PATH(index, D[n]) given `mth(lo, hi)`, the hash of leaves [lo, hi): the proof asks it
    only for subtrees RFC 6962 splits off, so a tiled log answers from O(log n) tiles."""
    if not 0 <= index < n:
        raise ValueError("leaf index out of range")
    out: list[bytes] = []
    lo, hi = 0, n
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append(mth(lo + k, hi))
            hi = lo + k
        else:
            out.append(mth(lo, lo + k))
            lo += k
    return out[::-1]


def consistency_path(mth: Callable[[int, int], bytes], n: int, m: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 2.1.2 given `mth(lo, hi)` (see `inclusion_path`)."""
    if not 0 < m <= n:
        raise ValueError("consistency proof needs 0 < m <= n")
    out: list[bytes] = []
    lo, hi, complete = 0, n, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append(mth(lo + k, hi))
            hi = lo + k
        else:
            out.append(mth(lo, lo + k))
            m -= k
            lo += k
            complete = False
    if not complete:
        out.append(mth(lo, hi))
    return out[::-1]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root_hash: bytes) -> None:
    """RFC 9162 2.1.3.2; raises ProofError unless `leaf` is at `index` of the tree."""
    if index < 0 or size < 1 or index >= size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf) != 32 or len(root_hash) != 32 or any(len(p) != 32 for p in proof):
        raise ProofError("proof hashes must be 32 bytes")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is too short")
    if r != root_hash:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]) -> None:
    """RFC 9162 2.1.4.2; raises ProofError unless tree size1 is a prefix of tree size2."""
    if size1 < 1 or size1 > size2:
        raise ProofError(f"no consistency proof from a tree of size {size1} to one of size {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("proof must be empty for equal sizes")
        if root1 != root2:
            raise ProofError("equal sizes but different roots")
        return
    if len(root1) != 32 or len(root2) != 32 or any(len(p) != 32 for p in proof):
        raise ProofError("proof hashes must be 32 bytes")
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root starts the path
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is too short")
    if fr != root1:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != root2:
        raise ProofError("consistency proof does not lead to the new root")
