"""A re-backup's new / changed / unmodified counts against the parent snapshot, whether the
trees it just stored are compared from memory or read back from the repository."""

from __future__ import annotations

import os

import pytest

from amber.backup import changes

from .helpers import open_repo, set_past_mtimes, write


def _tree(src: str) -> None:
    for d in range(12):
        for f in range(20):
            write(os.path.join(src, f"d{d}", "sub" if f % 2 else "", f"f{f}"), b"content %d %d" % (d, f))
    set_past_mtimes(src)


def _change(src: str) -> None:
    for d in range(0, 12, 3):  # 4 changed, in 4 folders
        with open(os.path.join(src, f"d{d}", "f0"), "ab") as fh:
            fh.write(b" and more")
    for d in (1, 5):  # 2 new files, one in a new folder
        write(os.path.join(src, f"d{d}", "sub", "new"), b"fresh")
    write(os.path.join(src, "d7", "newdir", "x"), b"fresh too")
    os.remove(os.path.join(src, "d11", "sub", "f1"))  # 1 deleted


@pytest.mark.parametrize("kept", [changes.STORED_ENTRIES, 0], ids=["from-memory", "read-back"])
def test_a_rebackup_counts_against_the_parent(repo, repo_path, tmp_path, monkeypatch, kept):
    monkeypatch.setattr(changes, "STORED_ENTRIES", kept)
    src = str(tmp_path / "src")
    _tree(src)
    first = repo.backup([src])
    assert first.stats.files_total == 240
    _change(src)
    second = open_repo(repo_path).backup([src])
    s = second.stats
    assert (s.files_new, s.files_changed, s.files_unmodified, s.files_total) == (3, 4, 235, 242)
    third = open_repo(repo_path).backup([src])  # nothing changed since: every file unmodified
    assert (third.stats.files_new, third.stats.files_changed, third.stats.files_unmodified) == (0, 0, 242)
