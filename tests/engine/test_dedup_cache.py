"""Deduplication, and the files cache that makes an unchanged backup read nothing."""

import os
import random
import shutil

from .helpers import PAST_NS, assert_same_tree, full_tree, open_repo, restored, set_past_mtimes, small_tree, write


def _stored_bytes(repo_path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(repo_path):
        total += sum(os.lstat(os.path.join(folder, f)).st_size for f in files)
    return total


def test_backing_up_the_same_data_twice_adds_almost_nothing(repo, repo_path, tmp_path):
    src = str(tmp_path / "src")
    full_tree(src)
    first = repo.backup([src], use_cache=False)
    assert first.bytes_added > 3 << 20  # the random file alone; the rest compresses
    size_after_first = _stored_bytes(repo_path)
    second = open_repo(repo_path).backup([src], use_cache=False)
    assert second.stats.bytes_read == first.stats.bytes_read  # really read again
    assert second.bytes_added < 16 << 10  # at most a few changed tree blobs of the parents
    assert _stored_bytes(repo_path) - size_after_first < 32 << 10


def test_identical_content_in_two_files_is_stored_once(repo, tmp_path):
    data = random.Random(5).randbytes(2 << 20)
    write(tmp_path / "src" / "one.bin", data)
    write(tmp_path / "src" / "two.bin", data)
    write(tmp_path / "src" / "sub" / "three.bin", data)
    result = repo.backup([str(tmp_path / "src")])
    assert result.stats.bytes_read == 3 * len(data)
    assert len(data) < result.bytes_added < len(data) * 1.05


def test_a_copy_in_another_folder_and_another_backup_is_stored_once(repo, repo_path, tmp_path):
    data = random.Random(6).randbytes(3 << 20)
    write(tmp_path / "a" / "x.bin", data)
    first = repo.backup([str(tmp_path / "a")])
    write(tmp_path / "b" / "renamed.bin", data, mode=0o600)
    second = open_repo(repo_path).backup([str(tmp_path / "b")])
    assert first.bytes_added > len(data)
    assert second.bytes_added < 16 << 10


def test_an_insertion_only_costs_the_chunks_around_it(repo, repo_path, tmp_path):
    data = random.Random(7).randbytes(6 << 20)
    write(tmp_path / "src" / "f.bin", data)
    repo.backup([str(tmp_path / "src")])
    write(tmp_path / "src" / "f.bin", data[: 3 << 20] + b"inserted" + data[3 << 20 :])
    second = open_repo(repo_path).backup([str(tmp_path / "src")])
    assert second.bytes_added < 3 << 20  # most chunks after the insertion are found again


def test_unchanged_files_are_not_read_again(repo, repo_path, tmp_path):
    src = str(tmp_path / "src")
    full_tree(src)
    first = repo.backup([src])
    assert first.stats.bytes_read > 10 << 20
    second = open_repo(repo_path).backup([src])
    assert second.stats.bytes_read == 0
    assert second.stats.files_new == second.stats.files_changed == 0
    assert second.stats.files_unmodified == first.stats.files_total
    assert second.bytes_added < 16 << 10
    # the snapshot made from the cache restores like the first one
    repo2 = open_repo(repo_path)
    target = tmp_path / "restore"
    repo2.restore(repo2.find_snapshot(second.snapshot_id), str(target), verify=True)
    assert_same_tree(src, restored(target, src))


def test_a_changed_file_is_read_again(repo, repo_path, tmp_path):
    src = small_tree(tmp_path / "src")
    repo.backup([src])
    path = os.path.join(src, "docs", "b.bin")
    write(path, b"new content of the same length".ljust(5000, b"."), mode=0o600, mtime_ns=PAST_NS)
    set_past_mtimes(src)
    second = open_repo(repo_path).backup([src])
    assert second.stats.files_changed == 1
    assert second.stats.bytes_read == 5000
    target = tmp_path / "restore"
    r = open_repo(repo_path)
    r.restore(r.find_snapshot(second.snapshot_id), str(target))
    assert_same_tree(src, restored(target, src))


def test_a_file_replaced_with_the_same_size_and_mtime_is_read_again(repo, repo_path, tmp_path):
    """Size and mtime alone would miss this; the inode and ctime catch it."""
    src = small_tree(tmp_path / "src")
    repo.backup([src])
    path = os.path.join(src, "hello.txt")
    tmp = os.path.join(src, ".hello.new")
    write(tmp, b"HELLO, AMBER\n")
    os.rename(tmp, path)
    set_past_mtimes(src)
    second = open_repo(repo_path).backup([src])
    assert second.stats.bytes_read == len(b"HELLO, AMBER\n")
    target = tmp_path / "restore"
    r = open_repo(repo_path)
    r.restore(r.find_snapshot(second.snapshot_id), str(target))
    with open(os.path.join(restored(target, src), "hello.txt"), "rb") as f:
        assert f.read() == b"HELLO, AMBER\n"


def test_recently_modified_files_are_not_trusted_to_the_cache(repo, repo_path, tmp_path):
    src = str(tmp_path / "src")
    write(os.path.join(src, "fresh.txt"), b"just written\n", mtime_ns=None)
    repo.backup([src])
    second = open_repo(repo_path).backup([src])
    assert second.stats.bytes_read == len(b"just written\n")


def test_the_cache_is_not_trusted_when_its_blobs_are_gone(repo, repo_path, tmp_path):
    """A cache entry naming blobs that are no longer indexed makes the file be read again."""
    src = small_tree(tmp_path / "src")
    first = repo.backup([src])
    for folder in ("data", "index", "snapshots"):
        shutil.rmtree(repo_path / folder)
    second = open_repo(repo_path).backup([src])
    assert second.stats.bytes_read == first.stats.bytes_read > 0
    report = open_repo(repo_path).check(read_data=True)
    # the data is sound; the audit log rightly names the snapshot deleted behind its back
    assert [e for e in report.errors if not e.startswith("audit log:")] == []
    assert any(first.snapshot_id[:8] in e and "deleted behind the log" in e for e in report.errors)
    target = tmp_path / "restore"
    r = open_repo(repo_path)
    r.restore(r.find_snapshot(second.snapshot_id), str(target))
    assert_same_tree(src, restored(target, src))


def test_a_second_repository_does_not_use_the_first_ones_cache(repo, tmp_path):
    from .helpers import init_repo

    src = small_tree(tmp_path / "src")
    first = repo.backup([src])
    other = init_repo(tmp_path / "other-repo").backup([src])
    assert other.stats.bytes_read == first.stats.bytes_read
