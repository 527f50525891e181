"""Restore writes only inside its target: hostile trees are refused, planted links never followed."""

import os

import pytest

from amber.errors import AmberError, IntegrityError
from amber.format import tree as treefmt
from amber.format.canonical import ascii_json
from amber.format.pack import BLOB_DATA, BLOB_TREE

from .helpers import assert_same_tree, open_repo, restored, small_tree


def _meta(name, kind):
    return {
        "name": name,
        "type": kind,
        "mode": 0o755 if kind == "dir" else 0o644,
        "uid": os.getuid(),
        "gid": os.getgid(),
        "mtime_ns": 0,
    }


def _store_tree(repo, nodes) -> tuple[str, str]:
    """Store tree bytes exactly as given: no sorting and no checks, as a hostile writer would."""
    raw = ascii_json({"nodes": nodes, "v": 1})
    bid = repo.keys.blob_id(raw)
    repo.blobs.add(BLOB_TREE, bid, raw)
    return bid.hex(), treefmt.digest(raw)


def _file(repo, name, data=b"written by a hostile snapshot\n"):
    bid = repo.keys.blob_id(data)
    repo.blobs.add(BLOB_DATA, bid, data)
    import hashlib

    return dict(_meta(name, "file"), size=len(data), content=[bid.hex()], sha256=hashlib.sha256(data).hexdigest())


def _dir(repo, name, children):
    tid, digest = _store_tree(repo, children)
    return dict(_meta(name, "dir"), subtree=tid, digest=digest)


def _snapshot(repo, top_nodes):
    tid, digest = _store_tree(repo, top_nodes)
    repo.blobs.flush()
    sid = repo.save_snapshot(
        {
            "v": 1,
            "time": "2030-01-01T00:00:00Z",
            "hostname": "hostile",
            "username": "x",
            "paths": ["/"],
            "tags": [],
            "tree": tid,
            "content_root": digest,
            "summary": {},
        }
    )
    return repo.load_snapshot(sid)


def _assert_untouched(tmp_path, outside, target):
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_bytes() == b"must stay\n"
    for folder, dirs, files in os.walk(tmp_path):
        if os.path.commonpath([folder, str(target)]) == str(target):
            continue
        assert "escape" not in files + dirs, f"written outside the target: {folder}/escape"


HOSTILE_NAMES = ["..", ".", "../escape", "../../escape", "a/../../escape", "sub/escape", "", "nul\x00escape"]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
@pytest.mark.parametrize("shape", ["file", "dir", "nested"])
def test_hostile_names_are_refused(repo, repo_path, tmp_path, outside, name, shape):
    if shape == "file":
        top = [_file(repo, name)]
    elif shape == "dir":
        top = [_dir(repo, name, [_file(repo, "escape")])]
    else:
        top = [_dir(repo, "ok", [_dir(repo, name, [_file(repo, "escape")])])]
    snap = _snapshot(repo, top)
    target = tmp_path / "target"
    r = open_repo(repo_path)
    with pytest.raises(IntegrityError):
        r.restore(r.find_snapshot(snap.id), str(target))
    _assert_untouched(tmp_path, outside, target)


def test_absolute_names_are_refused(repo, repo_path, tmp_path, outside):
    snap = _snapshot(repo, [_file(repo, str(outside / "escape"))])
    target = tmp_path / "target"
    r = open_repo(repo_path)
    with pytest.raises(IntegrityError):
        r.restore(r.find_snapshot(snap.id), str(target))
    _assert_untouched(tmp_path, outside, target)


@pytest.mark.parametrize("names", [["b", "a"], ["a", "a"]])
def test_unordered_or_duplicate_trees_are_refused(repo, repo_path, tmp_path, outside, names):
    snap = _snapshot(repo, [_file(repo, n, n.encode() * 10) for n in names])
    r = open_repo(repo_path)
    with pytest.raises(IntegrityError):
        r.restore(r.find_snapshot(snap.id), str(tmp_path / "target"))


def test_hostile_trees_fail_check(repo, repo_path, outside):
    _snapshot(repo, [_dir(repo, "..", [_file(repo, "escape")])])
    report = open_repo(repo_path).check()
    assert not report.ok


def test_a_symlink_in_the_snapshot_is_not_followed_by_later_writes(repo, repo_path, tmp_path, outside):
    """A snapshot with a symlink `d` -> outside and then files: the link is made last."""
    link = dict(_meta("d", "symlink"), target=str(outside))
    snap = _snapshot(repo, [_file(repo, "a"), link, _dir(repo, "z", [_file(repo, "escape")])])
    target = tmp_path / "target"
    r = open_repo(repo_path)
    r.restore(r.find_snapshot(snap.id), str(target))
    assert os.readlink(target / "d") == str(outside)
    _assert_untouched(tmp_path, outside, target)


# -- links planted in the target before the restore ------------------------------------------


def _plant(where: str, src: str, target, outside):
    """Put a symlink (or hard link) into the target where the restore will write."""
    out = restored(target, src)
    top = os.path.join(str(target), src.lstrip("/").split("/")[0])
    path, kind = {
        "top": (top, "dir"),
        "source-root": (out, "dir"),
        "inner-dir": (os.path.join(out, "docs"), "dir"),
        "file": (os.path.join(out, "hello.txt"), "file"),
        "dangling-file": (os.path.join(out, "unique.bin"), "new"),
        "deep-file": (os.path.join(out, "docs", "deep", "c.txt"), "file"),
        "symlink-node": (os.path.join(out, "link"), "file"),
        "empty-dir": (os.path.join(out, "empty"), "dir"),
    }[where]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    dest = {"dir": str(outside), "file": str(outside / "victim"), "new": str(outside / "escape")}[kind]
    os.symlink(dest, path)
    return path


@pytest.mark.parametrize(
    "where", ["top", "source-root", "inner-dir", "file", "dangling-file", "deep-file", "symlink-node", "empty-dir"]
)
def test_restore_never_follows_a_planted_symlink(repo, repo_path, tmp_path, outside, where):
    src = small_tree(tmp_path / "src")
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)
    target = tmp_path / "target"
    planted = _plant(where, src, target, outside)
    r = open_repo(repo_path)
    r.restore(r.find_snapshot(snap.id), str(target))
    _assert_untouched(tmp_path, outside, target)
    assert not (os.path.islink(planted) and os.readlink(planted).startswith(str(outside)))
    assert_same_tree(src, restored(target, src))


@pytest.mark.parametrize("include", ["docs", "docs/deep/c.txt", "hello.txt"])
def test_partial_restore_never_follows_a_planted_symlink(repo, repo_path, tmp_path, outside, include):
    src = small_tree(tmp_path / "src")
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)
    target = tmp_path / "target"
    _plant("inner-dir" if include.startswith("docs") else "file", src, target, outside)
    r = open_repo(repo_path)
    r.restore(r.find_snapshot(snap.id), str(target), include=[os.path.join(src, include)])
    _assert_untouched(tmp_path, outside, target)


def test_restore_never_writes_through_a_planted_hard_link(repo, repo_path, tmp_path, outside):
    """A hard link in the target to a file outside it must be replaced, not written through."""
    src = small_tree(tmp_path / "src")
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)
    target = tmp_path / "target"
    out = restored(target, src)
    os.makedirs(out)
    os.link(outside / "victim", os.path.join(out, "hello.txt"))
    r = open_repo(repo_path)
    r.restore(r.find_snapshot(snap.id), str(target))
    _assert_untouched(tmp_path, outside, target)
    assert_same_tree(src, out)


def test_restore_errors_are_amber_errors(repo, repo_path, tmp_path):
    """A folder in the way of a file is reported, not raised as a bare OSError."""
    src = small_tree(tmp_path / "src")
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)
    target = tmp_path / "target"
    os.makedirs(os.path.join(restored(target, src), "hello.txt", "in-the-way"))
    r = open_repo(repo_path)
    with pytest.raises(AmberError):
        r.restore(r.find_snapshot(snap.id), str(target))
