"""amber check, and damage injected into the repository's files: exit 20, named on stderr."""

from __future__ import annotations

import os
import shutil

import pytest

from cli_helpers import flip_bit, packs, truncate, write


@pytest.fixture
def damaged(repo, tmp_path):
    """A repository with one snapshot of a small tree; `victim` fills the only data pack."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    write(src / "d" / "victim.bin", os.urandom(256 << 10))
    write(src / "other.txt", b"small and far away\n")
    sid = repo.backup(src)["snapshot_id"]
    all_packs = packs(repo.repo)
    assert len(all_packs) >= 2, all_packs  # data and trees are packed apart
    ordered = sorted(all_packs, key=lambda p: p.stat().st_size)
    repo.sid = sid
    repo.victim = str(src / "d" / "victim.bin")
    repo.other = str(src / "other.txt")
    repo.src = src
    repo.data_pack = ordered[-1]  # the random file makes it by far the largest
    repo.tree_pack = ordered[0]
    return repo


def test_check_on_a_healthy_repository(repo, tree):
    repo.backup(tree["root"])
    repo.backup(tree["root"])
    for args in (("check",), ("check", "--read-data")):
        r = repo.run(*args)
        assert r.stderr == "", r
    doc = repo.json("check", "--read-data")
    assert isinstance(doc, dict)


def test_check_on_an_empty_repository(repo):
    repo.run("check")
    repo.run("check", "--read-data")


def _names_pack_and_file(r, repo, pack, *paths) -> None:
    assert pack.name in r.stderr or pack.name[:16] in r.stderr, f"the damaged pack is not named:\n{r!r}"
    assert repo.sid[:8] in r.stderr, f"the affected snapshot is not named:\n{r!r}"
    for p in paths:
        assert p in r.stderr, f"the affected file {p} is not named:\n{r!r}"


def test_bit_flip_in_a_data_pack(damaged):
    repo = damaged
    repo.run("check")  # structure is intact
    flip_bit(repo.data_pack, repo.data_pack.stat().st_size // 2, 3)
    r = repo.run("check", "--read-data", expect=20)
    _names_pack_and_file(r, repo, repo.data_pack, repo.victim)
    assert repo.other not in r.stderr, "the undamaged file in the same pack is not affected"
    doc = repo.json("check", "--read-data", expect=20, quiet=False)
    assert isinstance(doc, dict)

    r = repo.run("restore", "latest", "--target", repo.base / "t", "--verify", expect=20)
    assert repo.victim in r.stderr, f"restore --verify must name the damaged file:\n{r!r}"
    r = repo.run("cat", "latest", repo.victim, expect=20)
    assert repo.other not in r.stderr
    assert repo.run("cat", "latest", repo.other).stdout == b"small and far away\n"


def test_truncated_data_pack(damaged):
    repo = damaged
    truncate(repo.data_pack, repo.data_pack.stat().st_size // 3)
    r = repo.run("check", "--read-data", expect=20)
    _names_pack_and_file(r, repo, repo.data_pack, repo.victim)
    r = repo.run("restore", "latest", "--target", repo.base / "t", "--verify", expect=20)
    assert repo.victim in r.stderr, r


def test_deleted_data_pack_is_caught_without_reading_data(damaged):
    repo = damaged
    os.remove(repo.data_pack)
    for args in (("check",), ("check", "--read-data")):
        r = repo.run(*args, expect=20)
        _names_pack_and_file(r, repo, repo.data_pack, repo.victim, repo.other)
    r = repo.run("restore", "latest", "--target", repo.base / "t", "--verify", expect=20)
    assert repo.victim in r.stderr, r


def test_bit_flip_in_a_tree_pack(damaged):
    repo = damaged
    flip_bit(repo.tree_pack, 40)
    r = repo.run("check", expect=20)
    assert repo.sid[:8] in r.stderr, r
    r = repo.run("check", "--read-data", expect=20)
    assert repo.tree_pack.name in r.stderr or repo.tree_pack.name[:16] in r.stderr, r


def test_bit_flip_in_an_index_file(damaged):
    repo = damaged
    index = sorted((repo.repo / "index").iterdir())
    assert len(index) == 1
    flip_bit(index[0], index[0].stat().st_size // 2)
    r = repo.run("check", "--read-data", expect=20)
    assert index[0].name in r.stderr, f"the damaged index file is not named:\n{r!r}"
    repo.run("check", expect=20)


def test_bit_flip_in_a_snapshot_file(damaged):
    repo = damaged
    snap_files = sorted((repo.repo / "snapshots").iterdir())
    assert [p.name for p in snap_files] == [repo.sid]
    flip_bit(snap_files[0], snap_files[0].stat().st_size // 2, 5)
    r = repo.run("check", "--read-data", expect=20)
    assert repo.sid[:8] in r.stderr, f"the damaged snapshot is not named:\n{r!r}"
    repo.run("check", expect=20)


def test_damage_confined_to_one_snapshot_leaves_the_others_restorable(repo, tmp_path):
    a_src, b_src = tmp_path / "a", tmp_path / "b"
    a_src.mkdir()
    b_src.mkdir()
    write(a_src / "a.bin", os.urandom(200_000))
    repo.backup(a_src)
    before = set(packs(repo.repo))
    write(b_src / "b.bin", os.urandom(200_000))
    b = repo.backup(b_src)["snapshot_id"]
    b_data = max(set(packs(repo.repo)) - before, key=lambda p: p.stat().st_size)
    flip_bit(b_data, 1000)
    r = repo.run("check", "--read-data", expect=20)
    assert b[:8] in r.stderr and str(b_src / "b.bin") in r.stderr
    assert str(a_src / "a.bin") not in r.stderr, "only the damaged file is affected"
    snaps = repo.snapshots()
    a = next(s["id"] for s in snaps if s["id"] != b)
    target = tmp_path / "ok"
    repo.run("restore", a, "--target", target, "--verify")
    assert open(str(target) + str(a_src / "a.bin"), "rb").read() == open(a_src / "a.bin", "rb").read()
    shutil.rmtree(target)
