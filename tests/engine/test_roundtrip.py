"""Back up a tree with everything in it, restore it, and get the same tree back."""

import os

import pytest

from amber.errors import NotFound, RestoreFailed

from .helpers import assert_same_tree, describe, files_in, full_tree, open_repo, restored, small_tree, write


@pytest.fixture
def src(tmp_path):
    return str(tmp_path / "src")


def test_backup_and_restore_reproduce_the_tree(repo, repo_path, src, tmp_path):
    notes = full_tree(src)
    before = describe(src)
    result = repo.backup([src])
    assert result.stats.errors == []
    assert describe(src) == before  # backing up changes nothing
    j = result.to_json()
    assert j["files_new"] == j["files_total"] == sum(1 for e in before.values() if e["type"] == "file")

    fresh = open_repo(repo_path)
    snap = fresh.find_snapshot(result.snapshot_id)
    assert snap.paths == [src]
    target = tmp_path / "restore"
    stats = fresh.restore(snap, str(target), verify=True)
    assert stats.errors == []
    out = restored(target, src)
    assert_same_tree(src, out)
    for a, b in notes["hardlinks"]:
        assert os.lstat(os.path.join(out, a)).st_ino == os.lstat(os.path.join(out, b)).st_ino
    # the non-UTF-8 name came back as the same bytes
    assert b"latin-\xe9-\xff.txt" in os.listdir(os.fsencode(out))


def test_restore_twice_into_the_same_target(repo, src, tmp_path):
    small_tree(src)
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)
    target = tmp_path / "restore"
    repo.restore(snap, str(target))
    repo.restore(snap, str(target))
    assert_same_tree(src, restored(target, src))


def test_restore_overwrites_changed_files(repo, src, tmp_path):
    small_tree(src)
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)
    target = tmp_path / "restore"
    repo.restore(snap, str(target))
    out = restored(target, src)
    write(os.path.join(out, "hello.txt"), b"changed since\n" * 50)
    os.unlink(os.path.join(out, "link"))
    write(os.path.join(out, "link"), b"a file where a symlink was\n")
    repo.restore(snap, str(target))
    assert_same_tree(src, out)


def test_backup_of_several_paths(repo, tmp_path):
    a = small_tree(tmp_path / "a", seed=1)
    b = small_tree(tmp_path / "b", seed=2)
    snap = repo.find_snapshot(repo.backup([a, b, os.path.join(a, "docs")]).snapshot_id)
    assert {a, b} <= set(snap.paths)
    target = tmp_path / "restore"
    repo.restore(snap, str(target))
    assert_same_tree(a, restored(target, a))
    assert_same_tree(b, restored(target, b))


def test_backup_of_a_single_file(repo, tmp_path):
    f = write(tmp_path / "only.txt", b"just me\n" * 1000, mode=0o600)
    snap = repo.find_snapshot(repo.backup([f]).snapshot_id)
    target = tmp_path / "restore"
    repo.restore(snap, str(target))
    with open(restored(target, f), "rb") as fh:
        assert fh.read() == b"just me\n" * 1000
    assert os.stat(restored(target, f)).st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "include,expect",
    [
        ("docs", {"docs", "docs/a.md", "docs/b.bin", "docs/deep", "docs/deep/c.txt"}),
        ("docs/deep/c.txt", {"docs", "docs/deep", "docs/deep/c.txt"}),
        ("hello.txt", {"hello.txt"}),
        ("link", {"link"}),
        ("empty", {"empty"}),
    ],
)
def test_partial_restore(repo, src, tmp_path, include, expect):
    small_tree(src)
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)
    target = tmp_path / "restore"
    repo.restore(snap, str(target), include=[os.path.join(src, include)])
    out = restored(target, src)
    assert files_in(out) == expect
    want = describe(src)
    got = describe(out)
    for rel in expect:
        if want[rel]["type"] != "dir" or rel == include:
            assert got[rel] == want[rel], rel


def test_partial_restore_of_several_paths(repo, src, tmp_path):
    small_tree(src)
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)
    target = tmp_path / "restore"
    repo.restore(snap, str(target), include=[os.path.join(src, "hello.txt"), os.path.join(src, "docs", "b.bin")])
    assert files_in(restored(target, src)) == {"hello.txt", "docs", "docs/b.bin"}


def test_partial_restore_of_nothing_is_not_found(repo, src, tmp_path):
    small_tree(src)
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)
    with pytest.raises(NotFound):
        repo.restore(snap, str(tmp_path / "restore"), include=["/no-such-folder"])
    with pytest.raises(NotFound):  # a typo below a folder that exists
        repo.restore(snap, str(tmp_path / "restore2"), include=[os.path.join(src, "no-such-file")])


def test_restore_verify_catches_nothing_on_a_good_restore(repo, src, tmp_path):
    small_tree(src)
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)
    stats = repo.restore(snap, str(tmp_path / "restore"), verify=True)
    assert stats.verified == stats.files > 0


def test_restore_failed_is_an_integrity_error():
    from amber.errors import IntegrityError

    assert issubclass(RestoreFailed, IntegrityError)


def test_backup_of_a_missing_path_is_not_found(repo, tmp_path):
    with pytest.raises(NotFound):
        repo.backup([str(tmp_path / "missing")])


def test_snapshot_records_what_was_backed_up(repo, src):
    small_tree(src)
    result = repo.backup([src], tags=["b", "a", "b"], host="test-host")
    snap = repo.find_snapshot("latest")
    assert snap.id == result.snapshot_id
    assert snap.hostname == "test-host" and snap.tags == ["a", "b"] and snap.paths == [src]
    assert repo.find_snapshot(snap.id[:8]).id == snap.id
    assert snap.summary["files_total"] == 5
