"""Every byte is hostile: trees sealed with the real keys by someone holding the password.

Whatever a tree holds, restore, ls, find, diff, cat and check end with exit 0 or
20 (damage, naming the tree), never a traceback, and nothing is written outside
the restore's target.
"""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from amber.errors import IntegrityError
from amber.format import tree as treefmt
from hostile import HEX0, Planter, meta

from cli_helpers import environment, make_source
from sources import open_repo


def _plant(amber, build):
    """Run `build(planter)` against the user's repository, through the library."""
    with environment(amber.env()):
        repo = open_repo(amber.url, password=amber.password)
        try:
            return build(Planter(repo))
        finally:
            repo.close()


def _assert_outside_untouched(outside):
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_bytes() == b"must stay\n"
    assert not os.path.islink(outside / "victim")


def _good_snapshot(repo, tmp_path) -> str:
    src = make_source(tmp_path / "src", {"f": b"a file\n", "g": b"another\n"})
    return repo.backup(src)["snapshot_id"]


def _run_everything(repo, sid, good, target, *, restore_args=(), cat_path="/top/f") -> dict:
    """Every reading command on the snapshot; returns exit codes by command."""
    rcs = {}
    rcs["restore"] = repo.run("restore", sid, "--target", target, *restore_args, expect=None).rc
    rcs["ls"] = repo.run("ls", sid, "--json", expect=None).rc
    rcs["find"] = repo.run("find", "*", "--json", expect=None).rc
    rcs["diff"] = repo.run("diff", good, sid, "--json", expect=None).rc
    rcs["cat"] = repo.run("cat", sid, cat_path, expect=None).rc
    rcs["check"] = repo.run("check", expect=None).rc
    return rcs


# -- one bad field at a time: every command reports damage naming the tree ----------------------

BAD_NODES = {
    "subtree-not-a-string": {"type": "dir", "subtree": 5, "digest": HEX0},
    "subtree-not-hex": {"type": "dir", "subtree": "../../etc", "digest": HEX0},
    "content-not-a-list": {"type": "file", "size": 1, "content": HEX0, "sha256": HEX0},
    "content-not-hex": {"type": "file", "size": 1, "content": ["zz"], "sha256": HEX0},
    "mode-a-string": {"type": "fifo", "mode": "0o7777"},
    "mode-negative": {"type": "fifo", "mode": -1},
    "mtime-huge": {"type": "fifo", "mtime_ns": 10**30},
    "uid-huge": {"type": "fifo", "uid": 2**40},
    "size-a-string": {"type": "file", "size": "1", "content": [HEX0], "sha256": HEX0},
    "sha256-short": {"type": "file", "size": 1, "content": [HEX0], "sha256": "abc"},
    "target-not-a-string": {"type": "symlink", "target": ["/etc"]},
    "rdev-negative": {"type": "chardev", "rdev": -1},
    "inode-huge": {"type": "fifo", "inode": 2**65},
    "links-zero": {"type": "file", "size": 0, "content": [], "sha256": HEX0, "links": 0, "inode": 1},
    "xattrs-not-base64": {"type": "fifo", "xattrs": {"user.a": "not base64!"}},
    "xattrs-too-many": {"type": "fifo", "xattrs": {f"user.{i}": "" for i in range(1025)}},
    "flags-unknown-bit": {"type": "fifo", "flags": 0x80000},
}


@pytest.mark.parametrize("case", sorted(BAD_NODES))
def test_a_bad_node_is_damage_naming_its_tree(repo, tmp_path, outside, case):
    good = _good_snapshot(repo, tmp_path)

    def build(p: Planter) -> str:
        bad = meta("bad", "fifo") | BAD_NODES[case]
        return p.snapshot([p.file("f", b"fine\n"), p.dir("top", [bad, p.file("f", b"fine too\n")])])

    sid = _plant(repo, build)
    target = tmp_path / "target"
    rcs = _run_everything(repo, sid, good, target)
    assert rcs == {"restore": 20, "ls": 20, "find": 20, "diff": 20, "cat": 20, "check": 20}, rcs
    r = repo.run("ls", sid, expect=20)
    assert "tree " in r.stderr and "'bad'" in r.stderr
    assert not (target / "top").exists() or os.listdir(target / "top") == []
    _assert_outside_untouched(outside)


def test_ls_of_an_untouched_folder_still_works_beside_a_bad_one(repo, tmp_path):
    """A reader fails closed on the damaged tree and serves what does not need it."""

    def build(p: Planter) -> str:
        bad = meta("bad", "fifo", mode=-1)
        return p.snapshot([p.dir("a", [p.file("ok", b"ok\n")]), p.dir("b", [bad])])

    sid = _plant(repo, build)
    listing = repo.json("ls", sid, "/a")
    assert [e["path"] for e in listing] == ["/a", "/a/ok"]
    assert repo.run("cat", sid, "/a/ok").stdout == b"ok\n"
    repo.run("ls", sid, "/b", expect=20)


def test_ls_find_and_diff_skip_a_damaged_folder_and_serve_the_rest(repo, tmp_path):
    """A damaged folder is named (exit 20) after everything else is listed, found or compared."""

    def build(p: Planter) -> tuple[str, str]:
        good = p.snapshot([p.dir("a", [p.file("keep.txt", b"kept\n")])], hostname="good")
        bad = meta("bad", "fifo", mode=-1)
        damaged = p.snapshot(
            [p.dir("a", [p.file("keep.txt", b"kept\n")]), p.dir("b", [bad]), p.file("z.txt", b"z\n")],
            hostname="damaged",
        )
        return good, damaged

    good, damaged = _plant(repo, build)
    r = repo.run("ls", damaged, "--json", expect=20)
    assert [e["path"] for e in r.json()] == ["/a", "/a/keep.txt", "/b", "/z.txt"]
    assert "/b" in r.stderr and "damaged" in r.stderr and "Traceback" not in r.stderr
    r = repo.run("find", "keep.txt", "--json", expect=20)
    found = r.json()
    assert {m["snapshot"] for m in found} >= {good}
    assert all(m["path"] == "/a/keep.txt" for m in found)
    assert damaged[:8] in r.stderr
    r = repo.run("diff", good, damaged, "--json", expect=20)
    changes = {c["path"]: c["change"] for c in r.json()["changes"]}
    assert changes.get("/z.txt") == "added" and changes.get("/b") == "added"
    assert "Traceback" not in r.stderr


# -- the property: any hostile tree -----------------------------------------------------------

FIELDS = [
    "name", "type", "mode", "uid", "gid", "mtime_ns", "ctime_ns", "inode", "size", "content",
    "sha256", "subtree", "digest", "target", "rdev", "links", "device", "user", "group",
]  # fmt: skip

hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**70), 2**70),
    st.sampled_from([-1, 0, 1, 0o7777, 0o10000, 2**32 - 1, 2**32, 2**63, 2**64, 10**30, -(10**30)]),
    st.text(max_size=8),
    st.sampled_from(["ab" * 32, "AB" * 32, "ab" * 31, "zz" * 32, "..", "/", "file", "dir", "chardev", "\udcff"]),
    st.lists(st.sampled_from(["ab" * 32, 5, None, "x"]), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
hostile_names = st.one_of(
    st.sampled_from(["a", "b", "c", "f2", "..", ".", "", "a/b", "x\x00", "\udcff", "\ud800", "é", "zz"]),
    st.text(min_size=1, max_size=6),
)


@st.composite
def hostile_nodes(draw, blobs: dict) -> list:
    """Nodes of every type, starting valid and then spoiled: fields replaced by values of
    the wrong type, out of range, bad hex, bad names; some content lists huge."""
    nodes = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(treefmt.TYPES))
        name = draw(st.one_of(hostile_names, st.sampled_from(["n1", "n2", "n3", "n4"])))
        node = meta(name, kind, ctime_ns=1, inode=draw(st.integers(1, 3)))
        if kind == "file":
            node.update(size=len(blobs["data"]), content=[blobs["data_id"]], sha256=blobs["sha256"])
            if draw(st.booleans()):
                node.update(links=2, device=1)
        elif kind == "dir":
            node.update(subtree=blobs["tree_id"], digest=blobs["tree_digest"])
        elif kind == "symlink":
            node["target"] = draw(st.sampled_from([blobs["outside"], "../../..", "x"]))
        elif kind in ("chardev", "blockdev"):
            node["rdev"] = draw(st.integers(0, 2**20))
        for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 2]))):
            field = draw(st.sampled_from(FIELDS))
            if draw(st.integers(0, 5)) == 0:
                node.pop(field, None)
            else:
                node[field] = draw(hostile_values)
        if kind == "file" and draw(st.integers(0, 14)) == 0:
            n = draw(st.sampled_from([2, 1000, 100_000]))
            node["content"] = [blobs["data_id"]] * n
            node["size"] = draw(st.sampled_from([n, n * len(blobs["data"]), 2**62]))
        nodes.append(node)
    if draw(st.integers(0, 4)) != 0:  # mostly in order, as a reader expects
        nodes.sort(key=lambda n: n["name"] if isinstance(n.get("name"), str) else "")
    return nodes


_counter = itertools.count()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_any_hostile_tree_is_served_or_reported_never_a_traceback(repo, tmp_path, outside, data):
    n = next(_counter)
    good = getattr(test_any_hostile_tree_is_served_or_reported_never_a_traceback, "good", {}).get(repo.url)
    if good is None:
        good = _good_snapshot(repo, tmp_path)
        test_any_hostile_tree_is_served_or_reported_never_a_traceback.good = {repo.url: good}  # type: ignore[attr-defined]

    def setup(p: Planter) -> dict:
        payload = b"hostile payload\n"
        child = [p.file("inner", payload)]
        tid, dig = p.tree(child)
        import hashlib

        return {
            "data": payload,
            "data_id": p.data(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
            "tree_id": tid,
            "tree_digest": dig,
            "outside": str(outside),
        }

    blobs = _plant(repo, setup)
    nodes = data.draw(hostile_nodes(blobs))
    restore_args = data.draw(st.sampled_from([(), ("--no-owner", "--no-special"), ("--verify",)]))

    def build(p: Planter) -> str:
        # the hostile folder, as the root and as a subfolder beside an ordinary file
        tid, dig = p.tree(nodes)
        top = meta("top", "dir", subtree=tid, digest=dig)
        return p.snapshot([p.file("f", b"fine\n"), top])

    sid = _plant(repo, build)

    # decoding through the real reading code: refused, or every node passes validation
    def decode(p: Planter):
        tid, _ = p.tree(nodes)
        p.repo.load_index()
        try:
            return p.repo.load_tree(tid)
        except IntegrityError:
            return None

    decoded = _plant(repo, decode)
    if decoded is not None:
        assert all(treefmt.node_problem(node) is None for node in decoded)
        assert all(treefmt.valid_name(node["name"]) for node in decoded)

    target = tmp_path / f"target-{n}"
    rcs = _run_everything(repo, sid, good, target, restore_args=restore_args, cat_path="/f")
    assert set(rcs.values()) <= {0, 20}, rcs
    event(f"tree {'refused' if decoded is None else 'served'}, restore exit {rcs['restore']}")
    if decoded is None:
        assert rcs["restore"] == rcs["ls"] == rcs["diff"] == 20, rcs
    _assert_outside_untouched(outside)
    for folder, dirs, files in os.walk(target):
        for name in dirs + files:
            assert not name.startswith(".amber-restore-"), f"a temporary was left: {folder}/{name}"


# -- lengths an index merely claims ---------------------------------------------------------------


def _a_real_pack(p: Planter) -> bytes:
    p.repo.load_index()
    return next(iter(p.repo.blobs.index.values())).pack


def test_an_index_claiming_a_4_gib_blob_is_refused_not_allocated(repo, tmp_path):
    def build(p: Planter) -> str:
        sid = p.snapshot([p.file("small", b"x" * 100)])
        claimed = p.repo.keys.blob_id(b"claimed")
        p.index_entry(claimed, _a_real_pack(p), length=2**32 - 1, raw_length=2**32 - 1)
        node = meta("huge", "file", size=100, content=[claimed.hex()], sha256="ab" * 32)
        return sid, p.snapshot([node], hostname="other")

    good, bad = _plant(repo, build)
    r = repo.run("restore", bad, "--target", tmp_path / "t", expect=20)
    assert "not in any index" in r.stderr
    repo.run("restore", good, "--target", tmp_path / "g")  # the other index files still serve
    assert (tmp_path / "g" / "small").read_bytes() == b"x" * 100
    r = repo.run("check", expect=20)
    assert "4294967295" in r.stderr


def test_a_tree_placed_beyond_its_pack_is_damage(repo, tmp_path):
    def build(p: Planter) -> str:
        raw_id = p.repo.keys.blob_id(b'{"nodes":[],"v":1}')
        p.file("x")
        p.repo.blobs.flush()
        pack = _a_real_pack(p)
        size = p.repo.storage.stat(f"data/{pack.hex()[:2]}/{pack.hex()}").size
        p.index_entry(raw_id, pack, type=1, offset=size + 1000, length=49, raw_length=18)
        return p.snapshot([meta("d", "dir", subtree=raw_id.hex(), digest=HEX0)])

    sid = _plant(repo, build)
    for args in (("ls", sid), ("find", "nothing"), ("restore", sid, "--target", tmp_path / "t")):
        r = repo.run(*args, expect=20)
        assert "tree " in r.stderr and "bytes" in r.stderr, r


# -- restoring an untrusted snapshot as root -------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="owners and device nodes are restored only as root")
def test_restore_no_owner_no_special(repo, tmp_path):
    def build(p: Planter) -> str:
        return p.snapshot(
            [
                meta("dev", "blockdev", rdev=os.makedev(7, 0)),
                meta("pipe", "fifo"),
                p.file("suid", b"x\n", mode=0o4755, uid=4242, gid=4242),
            ]
        )

    sid = _plant(repo, build)
    repo.run("restore", sid, "--target", tmp_path / "t", "--no-owner", "--no-special")
    assert os.listdir(tmp_path / "t") == ["suid"]
    st = os.lstat(tmp_path / "t" / "suid")
    assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o755)
    repo.run("restore", sid, "--target", tmp_path / "u")
    assert sorted(os.listdir(tmp_path / "u")) == ["dev", "pipe", "suid"]
    assert os.lstat(tmp_path / "u" / "suid").st_uid == 4242


def test_reading_from_a_missing_pack_is_damage(repo, tmp_path):
    def build(p: Planter) -> str:
        lost = p.repo.keys.blob_id(b"lost")
        p.index_entry(lost, b"\x42" * 32, length=35, raw_length=4)
        tree_id = p.repo.keys.blob_id(b'{"nodes":[],"v":1}')
        p.index_entry(tree_id, b"\x43" * 32, type=1, length=49, raw_length=18)
        sha = "ab" * 32
        return p.snapshot(
            [
                meta("d", "dir", subtree=tree_id.hex(), digest=HEX0),
                meta("f", "file", size=4, content=[lost.hex()], sha256=sha),
            ]
        )

    sid = _plant(repo, build)
    assert "missing" in repo.run("cat", sid, "/f", expect=20).stderr
    assert "missing" in repo.run("ls", sid, "/d", expect=20).stderr
