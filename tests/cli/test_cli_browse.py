"""snapshots, ls, cat, diff, find: JSON documents checked against the source tree."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from cli_helpers import NON_UTF8_NAME, OLD_NS, iso_to_us, write

SNAPSHOT_FIELDS = ("id", "time", "hostname", "paths", "tags", "tree", "content_root", "retention", "legal_hold")


def source_entries(root) -> dict[str, os.stat_result]:
    """Absolute path -> lstat of root and everything below it (str paths, UTF-8 trees only)."""
    out = {str(root): os.lstat(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            out[p] = os.lstat(p)
    return out


def kind(st) -> str:
    return "dir" if stat.S_ISDIR(st.st_mode) else "symlink" if stat.S_ISLNK(st.st_mode) else "file"


def assert_entry_matches(e: dict, st: os.stat_result) -> None:
    p = e["path"]
    assert e["type"] == kind(st), p
    if e["type"] != "symlink":
        assert e["mode"] & 0o7777 == stat.S_IMODE(st.st_mode), (p, oct(e["mode"]), oct(st.st_mode))
    assert abs(iso_to_us(e["mtime"]) - st.st_mtime_ns // 1000) <= 1, (p, e["mtime"], st.st_mtime_ns)
    if e["type"] == "file":
        assert e["size"] == st.st_size, p
        with open(p, "rb") as f:
            assert e["sha256"] == hashlib.sha256(f.read()).hexdigest(), p
    assert isinstance(e["size"], int)


# -- snapshots ---------------------------------------------------------------------


def test_snapshots_json_fields_and_order(repo, utf8_tree, tmp_path):
    src = utf8_tree["root"]
    other = tmp_path / "other"
    other.mkdir()
    write(other / "o.txt", b"o")
    ids = [
        repo.backup(src)["snapshot_id"],
        repo.backup(other, args=("--tag", "t1"))["snapshot_id"],
        repo.backup(src, other)["snapshot_id"],
    ]
    snaps = repo.snapshots()
    assert isinstance(snaps, list) and [s["id"] for s in snaps] == ids, "snapshots lists oldest first"
    times = [iso_to_us(s["time"]) for s in snaps]
    assert times == sorted(times)
    for s in snaps:
        for k in SNAPSHOT_FIELDS:
            assert k in s, f"snapshots --json lacks {k}: {s}"
        assert s["retention"] is None and s["legal_hold"] is False
        assert isinstance(s["tags"], list) and isinstance(s["paths"], list)
        assert len(s["tree"]) == 64 and len(s["content_root"]) == 64
        assert isinstance(s["hostname"], str) and s["hostname"]
    assert snaps[0]["paths"] == [src]
    assert snaps[1]["paths"] == [str(other)] and snaps[1]["tags"] == ["t1"]
    assert sorted(snaps[2]["paths"]) == sorted([src, str(other)])
    human = repo.run("snapshots").out
    assert all(i[:8] in human for i in ids)
    assert human.index(ids[0][:8]) < human.index(ids[1][:8]) < human.index(ids[2][:8])


def test_snapshots_of_an_empty_repository(repo):
    assert repo.snapshots() == []
    repo.run("snapshots")


# -- ls --------------------------------------------------------------------------


def test_ls_json_matches_the_source(repo, utf8_tree):
    root = utf8_tree["root"]
    sid = repo.backup(root)["snapshot_id"]
    entries = repo.json("ls", sid)
    assert isinstance(entries, list)
    by_path = {e["path"]: e for e in entries}
    assert len(by_path) == len(entries), "a path is listed twice"
    src = source_entries(root)
    missing = set(src) - set(by_path)
    assert not missing, f"ls lacks {sorted(missing)}"
    for p, st in src.items():
        assert_entry_matches(by_path[p], st)
    # the folders above the backed-up path are there too, and nothing else
    parts = root.strip("/").split("/")
    ancestors = {"/" + "/".join(parts[:i]) for i in range(1, len(parts))}
    assert set(by_path) - set(src) == ancestors
    for e in entries:
        assert e["path"].startswith("/")
        if e["type"] == "file":
            assert len(e["sha256"]) == 64
    assert by_path[os.path.join(root, "suid-tool")]["mode"] & 0o7777 == 0o4755
    assert by_path[os.path.join(root, "secret.key")]["mode"] & 0o7777 == 0o600
    assert by_path[os.path.join(root, "empty-dir")]["type"] == "dir"
    assert by_path[os.path.join(root, "dangling-link")]["type"] == "symlink"


def test_ls_below_a_path(repo, utf8_tree):
    root = utf8_tree["root"]
    repo.backup(root)
    nested = os.path.join(root, "nested")
    entries = repo.json("ls", "latest", nested)
    paths = {e["path"] for e in entries}
    expected = set(source_entries(nested))
    assert expected <= paths and all(p == nested or p.startswith(nested + "/") for p in paths)
    assert {e["path"] for e in repo.json("ls", "latest", nested + "/")} == paths
    one = repo.json("ls", "latest", utf8_tree["small"])
    assert [e["path"] for e in one] == [utf8_tree["small"]]
    human = repo.run("ls", "latest", nested).out
    assert "leaf.txt" in human and "small.txt" not in human
    r = repo.run("ls", "latest", os.path.join(root, "no-such-thing"), expect=1)
    assert "no-such-thing" in r.stderr


# -- cat ---------------------------------------------------------------------------


def test_cat_is_byte_exact(repo, tree):
    root = tree["root"]
    repo.backup(root)
    for p in (
        tree["big"],
        tree["small"],
        tree["empty"],
        tree["leaf"],
        os.path.join(root, "ünïcødé — 日本語.txt"),
        os.path.join(root, "with space.txt"),
        os.path.join(root, "medium.bin"),
        os.path.join(root, "suid-tool"),
    ):
        with open(p, "rb") as f:
            want = f.read()
        got = repo.run("cat", "latest", p).stdout
        assert got == want, f"{p}: {len(got)} bytes, want {len(want)}"
    assert len(repo.run("cat", "latest", tree["big"]).stdout) == 9 << 20
    bname = os.path.join(os.fsencode(root), NON_UTF8_NAME)
    assert repo.run("cat", "latest", bname).stdout == open(bname, "rb").read()


def test_cat_refuses_what_is_not_a_file(repo, tree):
    root = tree["root"]
    repo.backup(root)
    for p in (root, os.path.join(root, "nested")):
        r = repo.run("cat", "latest", p, expect=None)
        assert r.rc not in (0,) and r.stdout == b"", r
    r = repo.run("cat", "latest", os.path.join(root, "nope.txt"), expect=1)
    assert "nope.txt" in r.stderr


# -- diff --------------------------------------------------------------------------


def test_diff_json_added_removed_modified(repo, utf8_tree):
    root = utf8_tree["root"]
    a = repo.backup(root)["snapshot_id"]
    os.remove(os.path.join(root, "with space.txt"))
    write(os.path.join(root, "small.txt"), b"hello amber, modified\n")
    os.utime(os.path.join(root, "small.txt"), ns=(OLD_NS, OLD_NS))
    write(os.path.join(root, "nested", "added.txt"), b"new\n")
    os.mkdir(os.path.join(root, "new-dir"))
    write(os.path.join(root, "new-dir", "inside.txt"), b"inside\n")
    b = repo.backup(root)["snapshot_id"]

    doc = repo.json("diff", a, b)
    assert isinstance(doc, dict)
    changes = doc["changes"] if isinstance(doc, dict) and "changes" in doc else doc
    kinds: dict[str, set] = {}
    for c in changes:
        kinds.setdefault(c["change"], set()).add(c["path"])
    j = lambda *p: os.path.join(root, *p)
    assert kinds.get("added", set()) == {j("nested", "added.txt"), j("new-dir"), j("new-dir", "inside.txt")}
    assert kinds.get("removed", set()) == {j("with space.txt")}
    assert kinds.get("modified", set()) == {j("small.txt")}
    touched = {c["path"] for c in changes}
    for untouched in ("big.bin", "run.sh", "link-to-small", "empty-dir", os.path.join("nested", "hardlink-b.txt")):
        assert j(untouched) not in touched, untouched

    back = repo.json("diff", b, a)
    back_changes = back["changes"] if isinstance(back, dict) else back
    assert {c["path"] for c in back_changes if c["change"] == "removed"} == kinds["added"]
    assert {c["path"] for c in back_changes if c["change"] == "added"} == kinds["removed"]

    same = repo.json("diff", a, a)
    assert (same["changes"] if isinstance(same, dict) else same) == []

    human = repo.run("diff", a, b).out
    assert "added.txt" in human and "with space.txt" in human and "small.txt" in human


# -- find --------------------------------------------------------------------------

FIND_FIELDS = ("snapshot", "time", "path", "type", "size", "mtime")


def test_find_json_by_base_name_and_full_path(repo, utf8_tree):
    root = utf8_tree["root"]
    small = utf8_tree["small"]
    a = repo.backup(root)["snapshot_id"]
    write(small, b"version two\n")
    os.utime(small, ns=(OLD_NS + 77, OLD_NS + 77))
    b = repo.backup(root)["snapshot_id"]
    times = {s["id"]: s["time"] for s in repo.snapshots()}

    for pattern in ("small.txt", small, "sm*.txt", "*/src/small.txt"):
        matches = repo.json("find", pattern)
        assert isinstance(matches, list)
        found = [(m["snapshot"], m["path"]) for m in matches]
        assert sorted(found) == sorted([(a, small), (b, small)]), (pattern, found)
        for m in matches:
            for k in FIND_FIELDS:
                assert k in m, f"find --json lacks {k}: {m}"
            assert m["type"] == "file" and m["time"] == times[m["snapshot"]]
        by_snap = {m["snapshot"]: m for m in matches}
        assert by_snap[a]["sha256"] == hashlib.sha256(b"hello amber\n").hexdigest()
        assert by_snap[b]["sha256"] == hashlib.sha256(b"version two\n").hexdigest()
        assert by_snap[b]["size"] == len(b"version two\n")
        assert abs(iso_to_us(by_snap[b]["mtime"]) - (OLD_NS + 77) // 1000) <= 1

    leaf = utf8_tree["leaf"]
    for pattern in ("leaf.txt", "*/deepest/*", leaf, "*/nested/deeper/deepest/leaf.txt"):
        paths = {m["path"] for m in repo.json("find", pattern)}
        assert leaf in paths, pattern
    dirs = repo.json("find", "deeper")
    assert {(m["path"], m["type"]) for m in dirs} == {(os.path.join(root, "nested", "deeper"), "dir")}
    assert len(dirs) == 2
    txt = {m["path"] for m in repo.json("find", "*.txt") if m["snapshot"] == b}
    assert {small, leaf, os.path.join(root, "with space.txt")} <= txt
    assert not any(p.endswith(".bin") for p in txt)
    assert repo.json("find", "no-such-name-*") == []
    human = repo.run("find", "small.txt").out
    assert small in human and a[:8] in human and b[:8] in human


# -- names that are not UTF-8 ------------------------------------------------------


def test_json_output_with_names_that_are_not_utf8(repo, tree):
    """The JSON must stay valid UTF-8 JSON, and carry the exact name (e.g. as surrogate escapes)."""
    root = tree["root"]
    broot = os.fsencode(root)
    want = os.path.join(broot, NON_UTF8_NAME)
    sid = repo.backup(root)["snapshot_id"]
    entries = repo.json("ls", sid)
    names = {os.fsencode(e["path"]) for e in entries}
    assert want in names
    assert os.path.join(broot, b"dir-\xfe", b"f\xe0.txt") in names
    matches = repo.json("find", "latin1-*")
    assert [os.fsencode(m["path"]) for m in matches] == [want]
    os.remove(want)
    b = repo.backup(root)["snapshot_id"]
    doc = repo.json("diff", sid, b)
    changes = doc["changes"] if isinstance(doc, dict) else doc
    assert [(c["change"], os.fsencode(c["path"])) for c in changes if c["change"] == "removed"] == [("removed", want)]


@pytest.mark.subprocess
def test_human_listings_with_names_that_are_not_utf8_under_a_utf8_locale(repo, tree):
    """Under a UTF-8 locale (e.g. en_US.UTF-8) Python's stdout is strict; listings must not crash."""
    root = tree["root"]
    repo.backup(root)
    env = repo.env(PYTHONIOENCODING="utf-8:strict")
    for args in (("ls", "latest"), ("find", "latin1-*"), ("ls", "latest", "--json")):
        r = repo.run(*args, env=env, expect=0)
        assert b"latin1-caf" in r.stdout
