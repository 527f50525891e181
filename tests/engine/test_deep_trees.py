"""Folders nested deeper than Python's recursion limit back up and restore whole."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from amber.backup import archiver as backup_mod

from .helpers import PAST_NS, init_repo, open_repo, restored, write
from sources import describe_entry

DEPTH = 1500
DEFAULT_RECURSION_LIMIT = 1000  # CPython's, which the walk and the plan must not need to raise


@pytest.fixture
def default_recursion_limit():
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    try:
        yield
    finally:
        assert sys.getrecursionlimit() == DEFAULT_RECURSION_LIMIT, "something raised the recursion limit"
        sys.setrecursionlimit(before)


@pytest.fixture
def deep_dirs(tmp_path):
    """Removes, after the test, the deep trees it made (shutil.rmtree recurses, and so
    would pytest's clean-up of old temporary folders)."""
    made: list[str] = []
    yield made
    for root in made:
        _remove_tree(root)


def _deep_tree(root: str, depth: int, *, width: int = 0) -> str:
    """`depth` nested folders `d`, a file at every 100th level and at the bottom,
    and `width` sibling folders (with a file each) beside every 250th level."""
    path = root
    os.mkdir(root)
    for level in range(1, depth + 1):
        path = os.path.join(path, "d")
        os.mkdir(path)
        if level % 100 == 0:
            write(os.path.join(path, f"at-{level}.txt"), f"level {level}\n".encode() * level)
        if width and level % 250 == 0:
            for w in range(width):
                write(os.path.join(path, f"side{w}", "f.txt"), f"{level}/{w}\n".encode())
    write(os.path.join(path, "bottom.bin"), bytes(range(256)) * 300)
    os.symlink("bottom.bin", os.path.join(path, "link"))
    for i, folder in enumerate(reversed(_folders(root))):  # deepest first: writing changes a parent's mtime
        os.utime(folder, ns=(PAST_NS + i * 1_000_003, PAST_NS + i * 1_000_003))
    return root


def _folders(root: str) -> list[str]:
    """Every folder under root (root included), parents before children, without recursion."""
    out, stack = [], [root]
    while stack:
        folder = stack.pop()
        out.append(folder)
        with os.scandir(folder) as it:
            stack.extend(sorted((e.path for e in it if e.is_dir(follow_symlinks=False)), reverse=True))
    return out


def _describe(root: str) -> dict:
    """rel path -> type, mode, mtime and content of every entry, without recursion."""
    out = {}
    for folder in _folders(root):
        for name in [".", *sorted(os.listdir(folder))]:
            p = folder if name == "." else os.path.join(folder, name)
            if name != "." and stat.S_ISDIR(os.lstat(p).st_mode):
                continue  # described as a folder of its own
            out[os.path.relpath(p, root)] = describe_entry(p)
    return out


def _remove_tree(root: str) -> None:
    if not os.path.lexists(root):
        return
    for folder in reversed(_folders(root)):
        for name in os.listdir(folder):
            p = os.path.join(folder, name)
            if not stat.S_ISDIR(os.lstat(p).st_mode):
                os.unlink(p)
        os.rmdir(folder)


def _backup_and_restore(repo, repo_path, tmp_path, src: str, deep_dirs: list, **kw):
    res = repo.backup([src], use_cache=False, **kw)
    assert res.stats.errors == []
    assert res.stats.dirs == len(_folders(src)) + src.count("/") - 1  # and the folders leading to it
    target = str(tmp_path / "out")
    deep_dirs.append(target)
    r = open_repo(repo_path)
    stats = r.restore(r.find_snapshot(res.snapshot_id), target, verify=True)
    assert stats.errors == []
    assert _describe(restored(target, src)) == _describe(src)
    return res


def test_a_tree_deeper_than_the_recursion_limit_backs_up_and_restores(
    repo, repo_path, tmp_path, default_recursion_limit, deep_dirs
):
    src = str(tmp_path / "src")
    deep_dirs.append(src)
    _deep_tree(src, DEPTH)
    res = _backup_and_restore(repo, repo_path, tmp_path, src, deep_dirs)
    assert res.stats.files_total == DEPTH // 100 + 1


def test_a_deep_and_wide_tree_past_the_open_folder_bound(
    repo, repo_path, tmp_path, default_recursion_limit, deep_dirs, monkeypatch
):
    """With few folders allowed open, the walk waits for the workers deep down and goes on."""
    monkeypatch.setattr(backup_mod, "MAX_OPEN_DIRS", 3)
    src = str(tmp_path / "src")
    deep_dirs.append(src)
    _deep_tree(src, DEPTH, width=5)
    res = _backup_and_restore(repo, repo_path, tmp_path, src, deep_dirs, processes=False)
    assert res.stats.files_total == DEPTH // 100 + 1 + (DEPTH // 250) * 5


def test_a_partial_restore_deep_inside(repo, repo_path, tmp_path, default_recursion_limit, deep_dirs):
    src = str(tmp_path / "src")
    deep_dirs.append(src)
    _deep_tree(src, DEPTH)
    res = repo.backup([src], use_cache=False)
    inner = os.path.join(src, *["d"] * 1200)
    target = str(tmp_path / "part")
    deep_dirs.append(target)
    r = open_repo(repo_path)
    r.restore(r.find_snapshot(res.snapshot_id), target, include=[inner])
    assert _describe(restored(target, inner)) == _describe(inner)
    # outside the include, only the folders leading to it (not the file at level 100)
    assert sorted(os.listdir(restored(target, os.path.join(src, *["d"] * 100)))) == ["d"]


def test_a_deep_tree_backs_up_under_a_retention_lock(tmp_path, default_recursion_limit, deep_dirs):
    repo = init_repo(tmp_path / "repo", default_retention={"mode": "governance", "duration": "1d"})
    src = str(tmp_path / "src")
    deep_dirs.append(src)
    _deep_tree(src, DEPTH)
    res = repo.backup([src], use_cache=False)
    r = open_repo(tmp_path / "repo")
    assert r.protection(r.find_snapshot(res.snapshot_id)).until is not None


def test_a_deep_tree_is_checked_listed_compared_and_searched(tmp_path, default_recursion_limit, deep_dirs):
    repo = init_repo(tmp_path / "repo")
    src = str(tmp_path / "src")
    deep_dirs.append(src)
    _deep_tree(src, DEPTH)
    first = repo.backup([src], use_cache=False)
    with open(os.path.join(src, *["d"] * DEPTH, "added.txt"), "w") as f:
        f.write("new at the bottom\n")
    second = repo.backup([src], use_cache=False)
    r = open_repo(tmp_path / "repo")
    a, b = r.find_snapshot(first.snapshot_id), r.find_snapshot(second.snapshot_id)
    rep = r.check(read_data=True)
    assert rep.ok, rep.errors
    assert rep.trees >= DEPTH
    listed = [p for p, _n in r.ls(b)]
    assert any(p.endswith("/added.txt") for p in listed) and len(listed) > DEPTH
    changes = r.diff(a, b)
    assert [c["change"] for c in changes if c["path"].endswith("added.txt")] == ["added"]
    assert [m["path"] for m in r.find("added.txt")] == [p for p in listed if p.endswith("/added.txt")]
    assert len(r.referenced_blobs([a, b])) > DEPTH
