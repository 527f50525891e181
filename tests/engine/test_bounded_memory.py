"""Backups and restores that hold only a bounded part of the tree still reproduce it exactly.

The bounds (open folders and entries of a backup's walk, files planned per round
of a restore, the pack region a restore reads at once) are set tiny here, so every
path through the rounds is taken."""

from __future__ import annotations

import os

import pytest

from amber.backup import archiver
from amber.errors import NotFound
from amber.format import layout
from amber.restore import restorer
from amber.storage.base import StorageWrapper

from .helpers import assert_same_tree, full_tree, open_repo, restored, write


@pytest.fixture
def tiny_bounds(monkeypatch):
    monkeypatch.setattr(archiver, "MAX_OPEN_ITEMS", 3)
    monkeypatch.setattr(archiver, "MAX_OPEN_DIRS", 2)
    monkeypatch.setattr(restorer, "PLAN_FILES", 3)
    monkeypatch.setattr(restorer, "MAX_SPAN", 1)  # every blob its own region, written in parallel


def test_round_trip_with_tiny_bounds(tiny_bounds, repo, repo_path, tmp_path):
    src = str(tmp_path / "src")
    notes = full_tree(src)
    result = repo.backup([src])
    assert result.stats.errors == []
    again = open_repo(repo_path).backup([src])  # the files cache, written folder by folder
    assert again.stats.files_unmodified == again.stats.files_total
    fresh = open_repo(repo_path)
    target = tmp_path / "restore"
    stats = fresh.restore(fresh.find_snapshot(result.snapshot_id), str(target), verify=True)
    assert stats.errors == [] and stats.verified == stats.files
    out = restored(target, src)
    assert_same_tree(src, out)
    for a, b in notes["hardlinks"]:  # the two names of a file may fall in different rounds
        assert os.lstat(os.path.join(out, a)).st_ino == os.lstat(os.path.join(out, b)).st_ino


def test_partial_restore_in_rounds(tiny_bounds, repo, repo_path, tmp_path):
    src = tmp_path / "src"
    for i in range(20):
        write(src / "keep" / f"f{i}", b"k%d" % i)
        write(src / "skip" / f"f{i}", b"s%d" % i)
    result = repo.backup([str(src)])
    fresh = open_repo(repo_path)
    snap = fresh.find_snapshot(result.snapshot_id)
    stats = fresh.restore(snap, str(tmp_path / "r"), include=[f"{src}/keep"])
    assert stats.files == 20
    out = restored(tmp_path / "r", src)
    assert sorted(os.listdir(out)) == ["keep"]
    assert_same_tree(src / "keep", os.path.join(out, "keep"))
    with pytest.raises(NotFound):
        fresh.restore(snap, str(tmp_path / "r2"), include=[f"{src}/nothing"])


def test_index_files_are_written_every_few_blobs(monkeypatch, repo, repo_path, tmp_path):
    from amber.repo import blobs

    monkeypatch.setattr(blobs, "BLOBS_PER_INDEX", 5)
    src = tmp_path / "src"
    for i in range(40):
        write(src / f"f{i}", os.urandom(3000))
    repo.blobs.pack_target = 4096  # a pack per file or two: 32 packs per index file would make 2
    result = repo.backup([str(src)])
    assert len(os.listdir(os.path.join(repo_path, "index"))) >= 4
    fresh = open_repo(repo_path)
    assert fresh.check().errors == []
    fresh.restore(fresh.find_snapshot(result.snapshot_id), str(tmp_path / "r"))
    assert_same_tree(src, restored(tmp_path / "r", src))


class _PackReads(StorageWrapper):
    """Every read of a pack: (offset, length), length None for the whole pack."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.reads: list[tuple[int, int | None]] = []

    def get(self, key, offset=0, length=None):
        if key.startswith(layout.DATA):
            self.reads.append((offset, length))
        return super().get(key, offset, length)


def test_trees_are_read_in_regions_of_their_pack(monkeypatch, repo, repo_path, tmp_path):
    """A walk reads trees from aligned regions of their pack (a few kept), never the whole
    pack: memory follows TREE_SPAN, not the pack size. A tree across a region's end is read alone."""
    from amber.repo import blobs

    monkeypatch.setattr(blobs, "TREE_SPAN", 1024)
    src = tmp_path / "src"
    for i in range(40):
        for j in range(3):
            write(src / f"d{i:02}" / f"f{j}", b"%d-%d" % (i, j))
    result = repo.backup([str(src)])
    fresh = open_repo(repo_path)
    reads = _PackReads(fresh.storage)
    fresh.blobs.storage = reads
    assert fresh.check().errors == []
    assert reads.reads and all(length is not None for _offset, length in reads.reads)
    aligned = [(o, n) for o, n in reads.reads if o % 1024 == 0 and n <= 1024]
    assert len(aligned) >= 2  # the tree pack is several regions long
    fresh.restore(fresh.find_snapshot(result.snapshot_id), str(tmp_path / "r"))
    assert_same_tree(src, restored(tmp_path / "r", src))
