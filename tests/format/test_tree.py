"""Tree encoding: canonical, round-tripping any file name a filesystem can hold, refusing hostile trees."""

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amber.errors import IntegrityError
from amber.format import tree as treefmt
from amber.format.canonical import ascii_json

FAST = settings(max_examples=80, deadline=None)

# Any name a POSIX filesystem can hold: bytes without '/' and NUL, as Python sees them.
raw_names = st.binary(min_size=1, max_size=40).filter(
    lambda b: b"/" not in b and b"\x00" not in b and b not in (b".", b"..")
)
fs_names = raw_names.map(os.fsdecode)
text_names = st.text(min_size=1, max_size=30).filter(treefmt.valid_name)
names = st.one_of(fs_names, text_names, st.sampled_from(["a", "é", "日本語", "🎉", "\udcff", "a b", "...", ".x"]))

hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
ints = st.integers(0, 2**63 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)


@st.composite
def nodes_for(draw, name):
    kind = draw(st.sampled_from(treefmt.TYPES))
    node = {
        "name": name,
        "type": kind,
        "mode": draw(st.integers(0, 0o7777)),
        "uid": draw(u32),
        "gid": draw(u32),
        "mtime_ns": draw(st.integers(-(2**62), 2**62)),
    }
    if kind == "file":
        node["content"] = draw(st.lists(hex64, max_size=3))
        n = len(node["content"])
        node["size"] = draw(st.integers(n, n * treefmt.MAX_DATA_BLOB))
        node["sha256"] = draw(hex64)
    elif kind == "dir":
        node["subtree"] = draw(hex64)
        node["digest"] = draw(hex64)
    elif kind == "symlink":
        node["target"] = os.fsdecode(draw(st.binary(min_size=1, max_size=60).filter(lambda b: b"\x00" not in b)))
    elif kind in ("chardev", "blockdev"):
        node["rdev"] = draw(u64)
    if draw(st.booleans()):
        node["user"] = draw(st.text(st.characters(blacklist_characters="\x00"), max_size=10))
    return node


@st.composite
def node_lists(draw, max_size=8):
    chosen = draw(st.lists(names, max_size=max_size, unique=True))
    return [draw(nodes_for(n)) for n in chosen]


@FAST
@given(nodes=node_lists())
def test_encode_then_decode_round_trips(nodes):
    raw = treefmt.encode(nodes)
    assert treefmt.decode(raw) == sorted(nodes, key=lambda n: n["name"])


json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(st.characters(), max_size=12))
json_keys = st.text(st.characters(), min_size=1, max_size=6)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_keys, inner, max_size=4),
    max_leaves=12,
)


@FAST
@given(nodes=node_lists(), extra=st.dictionaries(json_keys, json_values, max_size=3))
def test_encoding_is_exactly_ascii_json_for_any_node_fields(nodes, extra):
    """The fast encoder must give ascii_json's bytes for every node amber could build or keep
    (any text, including U+007F, non-ASCII and lone surrogates; any integer; nested unknown fields)."""
    nodes = [{**extra, **n} for n in nodes]
    expected = ascii_json({"nodes": sorted(nodes, key=lambda n: n["name"]), "v": 1})
    assert treefmt.encode(nodes) == expected


@FAST
@given(nodes=node_lists(), data=st.data())
def test_encoding_is_canonical(nodes, data):
    shuffled = data.draw(st.permutations(nodes))
    raw = treefmt.encode(nodes)
    assert treefmt.encode(shuffled) == raw
    assert raw.isascii()
    assert treefmt.encode(treefmt.decode(raw)) == raw
    assert treefmt.digest(raw) == treefmt.digest(treefmt.encode(shuffled))


@FAST
@given(raw_name=raw_names)
def test_any_filesystem_name_round_trips_to_the_same_bytes(raw_name):
    name = os.fsdecode(raw_name)
    assert treefmt.valid_name(name)
    raw = treefmt.encode([{"name": name, "type": "fifo", "mode": 0o644, "uid": 0, "gid": 0, "mtime_ns": 0}])
    (node,) = treefmt.decode(raw)
    assert os.fsencode(node["name"]) == raw_name


def test_non_utf8_names_travel_as_surrogate_escapes():
    name = os.fsdecode(b"caf\xe9-\xff")
    raw = treefmt.encode([{"name": name, "type": "fifo", "mode": 0o644, "uid": 0, "gid": 0, "mtime_ns": 0}])
    assert b"\\udce9" in raw and b"\\udcff" in raw
    assert os.fsencode(treefmt.decode(raw)[0]["name"]) == b"caf\xe9-\xff"


@FAST
@given(nodes=node_lists(max_size=5).filter(bool), data=st.data())
def test_digest_commits_to_every_field(nodes, data):
    raw = treefmt.encode(nodes)
    node = data.draw(st.sampled_from(nodes))
    field = data.draw(st.sampled_from(sorted(k for k in node if k != "name")))
    changed = [dict(n) for n in nodes]
    target = next(n for n in changed if n["name"] == node["name"])
    value = target[field]
    target[field] = (
        value + 1 if isinstance(value, int) else (value + ["00" * 32] if isinstance(value, list) else value + "x")
    )
    assert treefmt.digest(treefmt.encode(changed)) != treefmt.digest(raw)


# -- hostile trees --------------------------------------------------------------------


def _raw(nodes, **doc):
    """Tree bytes exactly as given: no sorting, no checks."""
    return ascii_json({"nodes": nodes, "v": 1, **doc})


def _node(name, kind="file"):
    return {"name": name, "type": kind, "mode": 0o644, "uid": 0, "gid": 0, "mtime_ns": 0}


@pytest.mark.parametrize(
    "name", ["", ".", "..", "/", "a/b", "../etc", "/etc/passwd", "a/..", "nul\x00", "\x00", "a\x00/b"], ids=repr
)
def test_unsafe_names_are_refused(name):
    with pytest.raises(IntegrityError):
        treefmt.decode(_raw([_node(name)]))
    with pytest.raises(IntegrityError):
        treefmt.decode(_raw([_node("a"), _node(name, "dir"), _node("zzz")]))


@pytest.mark.parametrize("names", [["a", "a"], ["b", "a"], ["a", "c", "b"], ["é", "e"], ["a", "b", "b"]])
def test_duplicate_or_unordered_names_are_refused(names):
    with pytest.raises(IntegrityError):
        treefmt.decode(_raw([_node(n) for n in names]))


@FAST
@given(nodes=node_lists(max_size=6).filter(lambda ns: len(ns) >= 2), data=st.data())
def test_any_misordering_is_refused(nodes, data):
    ordered = sorted(nodes, key=lambda n: n["name"])
    shuffled = data.draw(st.permutations(ordered))
    dup = data.draw(st.sampled_from(ordered))
    if shuffled != ordered:
        with pytest.raises(IntegrityError):
            treefmt.decode(_raw(shuffled))
    with pytest.raises(IntegrityError):
        treefmt.decode(_raw(sorted(ordered + [dup], key=lambda n: n["name"])))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"null",
        b"[]",
        b'"tree"',
        b"{}",
        b'{"v":1}',
        b'{"v":3,"nodes":[]}',
        b'{"v":true,"nodes":[]}',
        b'{"v":1,"nodes":{}}',
        b'{"v":"1","nodes":[]}',
        b'{"v":1,"nodes":[1]}',
        b'{"v":1,"nodes":[{"type":"file"}]}',
        b'{"v":1,"nodes":[{"name":5,"type":"file"}]}',
        b'{"v":1,"nodes":[{"name":"a","type":"socket"}]}',
        b'{"v":1,"nodes":[{"name":"a"}]}',
        b'{"v":1,"nodes":[null]}',
        b"\xff\xfe{}",
        b'{"v":1,"nodes":[]}\xff',
    ],
    ids=repr,
)
def test_malformed_trees_are_refused(raw):
    with pytest.raises(IntegrityError):
        treefmt.decode(raw)


def test_deeply_nested_json_is_refused():
    depth = 100_000
    raw = b'{"v":1,"nodes":[' + b"[" * depth + b"]" * depth + b"]}"
    with pytest.raises(IntegrityError):
        treefmt.decode(raw)


@FAST
@given(garbage=st.binary(max_size=200))
def test_garbage_is_refused_or_a_valid_tree(garbage):
    try:
        nodes = treefmt.decode(garbage)
    except IntegrityError:
        return
    assert all(treefmt.valid_name(n["name"]) for n in nodes)


def test_empty_tree_round_trips():
    raw = treefmt.encode([])
    assert raw == b'{"nodes":[],"v":1}'
    assert treefmt.decode(raw) == []
    assert json.loads(raw) == {"nodes": [], "v": 1}


# -- every field of every node is checked at decode --------------------------------------------

HEX = "ab" * 32


def _full(kind, **extra):
    node = {"name": "n", "type": kind, "mode": 0o644, "uid": 1000, "gid": 1000, "mtime_ns": 1, "ctime_ns": 1}
    node["inode"] = 7
    node.update(
        {
            "file": {"size": 3, "content": [HEX], "sha256": HEX},
            "dir": {"subtree": HEX, "digest": HEX},
            "symlink": {"target": "../x"},
            "chardev": {"rdev": 5},
            "blockdev": {"rdev": 5},
            "fifo": {},
        }[kind]
    )
    node.update(extra)
    return {k: v for k, v in node.items() if v is not _DROP}


_DROP = "<drop this field>"

BAD_FIELDS = [
    ("dir", {"subtree": 5}),
    ("dir", {"subtree": "zz" * 32}),
    ("dir", {"subtree": HEX[:-1]}),
    ("dir", {"subtree": HEX.upper()}),
    ("dir", {"subtree": None}),
    ("dir", {"digest": "x"}),
    ("dir", {"subtree": _DROP}),
    ("file", {"content": HEX}),
    ("file", {"content": [5]}),
    ("file", {"content": ["not hex" * 9]}),
    ("file", {"content": [HEX, HEX + ","]}),
    ("file", {"content": [HEX[:63] + "," + HEX[:63]], "size": 3}),
    ("file", {"content": None}),
    ("file", {"content": [HEX] * 4, "size": 3}),
    ("file", {"content": [HEX], "size": (8 << 20) + 1}),
    ("file", {"content": [], "size": 5}),
    ("file", {"size": "3"}),
    ("file", {"size": -1}),
    ("file", {"size": 3.0}),
    ("file", {"sha256": "x" * 64}),
    ("file", {"sha256": 5}),
    ("file", {"sha256": _DROP}),
    ("file", {"links": 0}),
    ("file", {"links": 2**64}),
    ("file", {"device": -1}),
    ("file", {"mode": "420"}),
    ("file", {"mode": -1}),
    ("file", {"mode": 0o10000}),
    ("file", {"mode": True}),
    ("file", {"mode": 420.0}),
    ("file", {"mode": _DROP}),
    ("fifo", {"uid": 2**40}),
    ("fifo", {"uid": -1}),
    ("fifo", {"gid": 2**32}),
    ("fifo", {"mtime_ns": 10**30}),
    ("fifo", {"mtime_ns": -(10**30)}),
    ("fifo", {"ctime_ns": "now"}),
    ("fifo", {"inode": -5}),
    ("fifo", {"inode": 2**64}),
    ("fifo", {"user": 5}),
    ("fifo", {"group": ["root"]}),
    ("fifo", {"user": "a\x00b"}),
    ("symlink", {"target": 5}),
    ("symlink", {"target": ""}),
    ("symlink", {"target": "a\x00b"}),
    ("symlink", {"target": "x" * 5000}),
    ("symlink", {"target": "\ud800"}),
    ("symlink", {"target": _DROP}),
    ("chardev", {"rdev": -1}),
    ("blockdev", {"rdev": 2**64}),
    ("chardev", {"rdev": _DROP}),
    ("fifo", {"type": "socket"}),
    ("fifo", {"type": ["file"]}),
    ("fifo", {"target": 5}),
    ("fifo", {"content": [1]}),
]


@pytest.mark.parametrize(
    "kind,extra", BAD_FIELDS, ids=[f"{k}-{sorted(e)[0]}-{i}" for i, (k, e) in enumerate(BAD_FIELDS)]
)
def test_bad_fields_are_refused_naming_the_tree_and_node(kind, extra):
    raw = _raw([_full(kind, **extra)])
    with pytest.raises(IntegrityError, match=r"tree 0123: node 'n'"):
        treefmt.decode(raw, "tree 0123")


@pytest.mark.parametrize("kind", treefmt.TYPES)
def test_complete_nodes_of_every_type_decode(kind):
    node = _full(kind)
    assert treefmt.decode(_raw([node])) == [node]
    assert treefmt.node_problem(node) is None


def test_limits_themselves_are_accepted():
    node = _full(
        "file",
        mode=0o7777,
        uid=2**32 - 1,
        gid=0,
        mtime_ns=2**63 - 1,
        ctime_ns=-(2**63),
        inode=2**64 - 1,
        links=2**64 - 1,
        device=2**64 - 1,
        content=[HEX, HEX],
        size=2 * (8 << 20),
    )
    assert treefmt.decode(_raw([node])) == [node]


def test_unknown_fields_are_kept():
    node = _full("file", future={"x": [1, 2.5, None]}, also=10**40)
    assert treefmt.decode(_raw([node])) == [node]
