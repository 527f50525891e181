"""Merkle proofs against the published RFC 6962 vectors (tests/vectors/rfc6962) and our own trees."""

import base64
import json
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.audit import merkle

VECTORS = pathlib.Path(__file__).resolve().parent.parent / "vectors" / "rfc6962"


def _b(x):
    return base64.b64decode(x) if x else b""


def _cases(kind):
    return sorted((VECTORS / kind).rglob("*.json"))


@pytest.mark.parametrize("path", _cases("inclusion"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_inclusion_vectors(path):
    c = json.loads(path.read_text())
    proof = [_b(p) for p in c.get("proof") or []]
    args = (_b(c.get("leafHash")), c.get("leafIdx", 0), c.get("treeSize", 0), proof, _b(c.get("root")))
    if c["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("path", _cases("consistency"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_consistency_vectors(path):
    c = json.loads(path.read_text())
    proof = [_b(p) for p in c.get("proof") or []]
    args = (c.get("size1", 0), c.get("size2", 0), _b(c.get("root1")), _b(c.get("root2")), proof)
    if c["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_vectors_are_present():
    assert len(_cases("inclusion")) > 20 and len(_cases("consistency")) > 20


def _recursive_root(leaves):
    if len(leaves) == 1:
        return leaves[0]
    k = merkle._split(len(leaves))
    return merkle.node_hash(_recursive_root(leaves[:k]), _recursive_root(leaves[k:]))


def test_rfc6962_reference_root():
    # the 8-entry test tree of RFC 6962's reference implementation / the vectors above
    entries = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ]
    leaves = [merkle.leaf_hash(e) for e in entries]
    assert base64.b64encode(merkle.root(leaves)).decode() == "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg="
    assert merkle.root([]) == merkle.EMPTY_ROOT


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
def test_generated_proofs_verify(entries, data):
    leaves = [merkle.leaf_hash(e) for e in entries]
    n = len(leaves)
    r = merkle.root(leaves)
    assert r == _recursive_root(leaves)
    i = data.draw(st.integers(0, n - 1))
    merkle.verify_inclusion(leaves[i], i, n, merkle.inclusion_proof(leaves, i), r)
    m = data.draw(st.integers(1, n))
    proof = merkle.consistency_proof(leaves, m)
    merkle.verify_consistency(m, n, merkle.root(leaves[:m]), r, proof)
    if n > 1:
        bad = bytes([leaves[i][0] ^ 1]) + leaves[i][1:]
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(bad, i, n, merkle.inclusion_proof(leaves, i), r)
    if m < n:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(m, n, merkle.root(leaves[:m]), merkle.root(leaves[:-1] + [b"\x00" * 32]), proof)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 40), st.sampled_from([1, 2, 4, 8]))
def test_tile_roots_are_the_roots_of_each_complete_group(n, width):
    leaves = merkle.leaf_hashes([bytes([i]) for i in range(n)])
    assert leaves == [merkle.leaf_hash(bytes([i])) for i in range(n)]
    want = [merkle.root(leaves[k : k + width]) for k in range(0, n - width + 1, width)]
    assert merkle.tile_roots(leaves, width) == want
