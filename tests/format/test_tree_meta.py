"""Tree version 2 (FORMAT.md §10.4): extended attributes and flags in nodes, pinned by a golden
vector, round-tripped by hypothesis, bounded on read."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.errors import IntegrityError
from amber.format import nodemeta
from amber.format import tree as treefmt

VECTOR = json.loads((Path(__file__).parent.parent / "vectors" / "tree_v2.json").read_text())
HEX = "ab" * 32
TAGS = {1: "user::", 2: "user:", 4: "group::", 8: "group:", 0x10: "mask::", 0x20: "other::"}


def acl_text(value: str) -> str:
    """The kernel's binary ACL (a u32 version 2, then u16 tag, u16 permissions, u32 id per entry)
    as getfacl spells it: read from the document alone."""
    raw = base64.b64decode(value)
    assert struct.unpack_from("<I", raw)[0] == 2
    out = []
    for tag, perm, ident in struct.iter_unpack("<HHI", raw[4:]):
        who = TAGS[tag] + (str(ident) if tag in (2, 8) else "")
        bits = "".join(c if perm & b else "-" for c, b in (("r", 4), ("w", 2), ("x", 1)))
        out.append(f"{who}{':' if tag in (2, 8) else ''}{bits}")
    return " ".join(out)


def test_golden_vector_encodes_decodes_and_digests():
    raw = treefmt.encode(VECTOR["nodes"])
    assert raw == VECTOR["encoded"].encode("ascii")
    assert treefmt.digest(raw) == VECTOR["digest"]
    assert json.loads(raw)["v"] == 2
    assert treefmt.decode(raw) == sorted(VECTOR["nodes"], key=lambda n: n["name"])
    # canonical JSON built from the document alone: sorted keys, no spaces, ASCII escapes
    doc = {"nodes": sorted(VECTOR["nodes"], key=lambda n: n["name"]), "v": 2}
    assert raw == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def test_golden_vector_acls_are_the_kernels_binary_form():
    nodes = {n["name"]: n for n in VECTOR["nodes"]}
    assert acl_text(nodes["report.txt"]["xattrs"]["system.posix_acl_access"]) == VECTOR["acls"]["report.txt"]
    assert acl_text(nodes["shared"]["xattrs"]["system.posix_acl_access"]) == VECTOR["acls"]["shared"]
    assert acl_text(nodes["shared"]["xattrs"]["system.posix_acl_default"]) == VECTOR["acls"]["shared default"]
    assert nodemeta.letters(nodes["report.txt"]["flags"]) == "ia"
    assert nodemeta.letters(nodes["scratch.tmp"]["flags"]) == "d"


def test_a_tree_without_attributes_or_flags_stays_version_1():
    plain = [n for n in VECTOR["nodes"] if "xattrs" not in n and "flags" not in n]
    assert plain and json.loads(treefmt.encode(plain))["v"] == 1


names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40).map(
    lambda s: "user." + s
)
attrs = st.dictionaries(names, st.binary(max_size=300), min_size=1, max_size=8)
flag_sets = st.sets(st.sampled_from(sorted(nodemeta.FLAGS.values())), min_size=1).map(sum)


@st.composite
def nodes_with_meta(draw):
    out = []
    for i, kind in enumerate(draw(st.lists(st.sampled_from(["file", "dir", "symlink", "fifo"]), max_size=6))):
        node = {"name": f"n{i}", "type": kind, "mode": 0o644, "uid": 1, "gid": 2, "mtime_ns": i}
        if kind == "file":
            node.update(size=1, content=[HEX], sha256=HEX)
        elif kind == "dir":
            node.update(subtree=HEX, digest=HEX)
        elif kind == "symlink":
            node["target"] = "t"
        if draw(st.booleans()):
            node["xattrs"] = nodemeta.encode_xattrs(draw(attrs))
        if kind in ("file", "dir") and draw(st.booleans()):
            node["flags"] = draw(flag_sets)
        out.append(node)
    return out


@settings(max_examples=150, deadline=None)
@given(nodes_with_meta())
def test_nodes_with_attributes_and_flags_round_trip(nodes):
    raw = treefmt.encode(nodes)
    decoded = treefmt.decode(raw)
    assert decoded == nodes
    has_meta = any("xattrs" in n or "flags" in n for n in nodes)
    assert json.loads(raw)["v"] == (2 if has_meta else 1)
    for n in decoded:
        if "xattrs" in n:
            assert nodemeta.encode_xattrs(nodemeta.decode_xattrs(n["xattrs"])) == n["xattrs"]


def _with(field: str, value) -> bytes:
    node = {"name": "x", "type": "fifo", "mode": 0o644, "uid": 0, "gid": 0, "mtime_ns": 0, field: value}
    return json.dumps({"nodes": [node], "v": 2}).encode()


@pytest.mark.parametrize(
    "value",
    [
        {"user.a": base64.b64encode(bytes(nodemeta.MAX_XATTR_VALUE + 1)).decode()},
        {f"user.{i}": "" for i in range(nodemeta.MAX_XATTRS + 1)},
        {f"user.{i}": base64.b64encode(bytes(60 << 10)).decode() for i in range(5)},
        {"user.a": "AB=="},
        {"user.a": 5},
        {"x" * 256: ""},
        {"\udcff" * 2: ""} | {"user.\ud800": ""},
    ],
    ids=["long-value", "too-many", "too-heavy", "not-canonical", "not-a-string", "long-name", "bad-surrogate"],
)
def test_attributes_beyond_the_bounds_are_refused_naming_the_node(value):
    with pytest.raises(IntegrityError, match="tree: node 'x': `xattrs`"):
        treefmt.decode(_with("xattrs", value))


def test_attributes_at_the_bounds_are_accepted():
    at_count = {f"user.{i:04d}": "" for i in range(nodemeta.MAX_XATTRS)}
    treefmt.decode(_with("xattrs", at_count))
    big = base64.b64encode(bytes(nodemeta.MAX_XATTR_VALUE)).decode()
    treefmt.decode(_with("xattrs", {"user.a": big}))
    treefmt.decode(_with("xattrs", {"\udcff": ""}))  # a name that is not UTF-8, escaped as file names are


@pytest.mark.parametrize("value", [0, -1, 0x80000, 1 << 40, True, "i", 1.5])
def test_flags_beyond_the_recorded_bits_are_refused(value):
    with pytest.raises(IntegrityError, match="`flags`"):
        treefmt.decode(_with("flags", value))


def test_a_tree_of_an_unknown_version_is_refused():
    with pytest.raises(IntegrityError, match="not an amber tree"):
        treefmt.decode(b'{"nodes":[],"v":3}')
