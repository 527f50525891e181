"""Storage that fails mid-backup, and storage that cannot delete."""

import os

import pytest

from amber.errors import StorageError
from amber.storage import register
from amber.storage.local import LocalStorage
from amber.storage.wrappers import AppendOnlyStorage
from amber.testing import FailingStorage, InjectedFault

from .helpers import KDF_N, PASSWORD, assert_same_tree, full_tree, open_repo, restored, small_tree, with_storage, write

SMALL_PACKS = 256 << 10  # many packs from a small tree, so failures land everywhere


@pytest.fixture
def src(tmp_path):
    s = small_tree(tmp_path / "src")
    for i in range(10):
        write(os.path.join(s, "many", f"r{i}.bin"), os.urandom(150_000))
    return s


def _restore_and_compare(repo_path, snapshot_id, src, target):
    r = open_repo(repo_path)
    r.restore(r.find_snapshot(snapshot_id), str(target), verify=True)
    assert_same_tree(src, restored(target, src))


def _puts_of_a_whole_backup(repo, src) -> list[str]:
    """The keys a whole backup of `src` puts, in order."""
    counter = FailingStorage(repo.storage, fail_after=10**9)
    with_storage(repo, counter, pack_size=SMALL_PACKS).backup([src], use_cache=False)
    return list(counter.stored_keys)


@pytest.mark.parametrize("fail_after", [0, 1, 3, "data-done", "index", "snapshot"])
def test_an_interrupted_backup_leaves_a_sound_repository(repo, repo_path, tmp_path, src, fail_after):
    # learn how many puts a whole backup of this tree makes, in a scratch repository
    from .helpers import init_repo

    keys = _puts_of_a_whole_backup(init_repo(tmp_path / "scratch"), src)
    assert len(keys) >= 8
    first_index = min(i for i, k in enumerate(keys) if k.startswith("index/"))
    snapshot = next(i for i, k in enumerate(keys) if k.startswith("snapshots/"))
    # fail the put of: the last pack, the first index file, the snapshot document
    n = {"data-done": first_index - 1, "index": first_index, "snapshot": snapshot}.get(fail_after, fail_after)
    failing = FailingStorage(repo.storage, fail_after=n)
    with pytest.raises(StorageError):
        with_storage(repo, failing, pack_size=SMALL_PACKS).backup([src])
    assert failing.failed_keys
    assert not any(k.startswith("snapshots/") for k in failing.stored_keys)

    report = open_repo(repo_path).check(read_data=True)
    assert report.errors == []
    assert open_repo(repo_path).snapshots() == []

    result = open_repo(repo_path).backup([src])
    assert open_repo(repo_path).check(read_data=True).errors == []
    _restore_and_compare(repo_path, result.snapshot_id, src, tmp_path / "restore")


def test_a_backup_retried_by_the_same_client_after_a_failure_is_complete(repo, repo_path, tmp_path, src):
    """A transient storage failure, then the same Repository object backs up again."""
    failing = FailingStorage(repo.storage, fail_after=2)
    client = with_storage(repo, failing, pack_size=SMALL_PACKS)
    with pytest.raises(StorageError):
        client.backup([src])
    failing.heal()
    result = client.backup([src])
    report = open_repo(repo_path).check(read_data=True)
    assert report.errors == []
    _restore_and_compare(repo_path, result.snapshot_id, src, tmp_path / "restore")


def test_a_failure_reaches_the_caller_as_a_storage_error(repo, src):
    failing = FailingStorage(repo.storage, fail_after=0)
    with pytest.raises(InjectedFault):
        with_storage(repo, failing).backup([src])


# -- append-only credentials ------------------------------------------------------------------

_APPEND_ONLY: list[AppendOnlyStorage] = []


def _append_only(rest: str, create: bool, options):
    s = AppendOnlyStorage(LocalStorage(rest, create=create))
    _APPEND_ONLY.append(s)
    return s


register("appendonly-test", _append_only)


def test_backups_through_append_only_storage(tmp_path):
    from amber.repository import Repository

    url = f"appendonly-test:{tmp_path / 'repo'}"
    Repository.init(url, PASSWORD, kdf_n=KDF_N)
    src = str(tmp_path / "src")
    full_tree(src)
    first = Repository.open(url, PASSWORD).backup([src])
    write(os.path.join(src, "added later.txt"), b"new\n")
    os.unlink(os.path.join(src, "hard-b"))
    second = Repository.open(url, PASSWORD).backup([src])
    third = Repository.open(url, PASSWORD).backup([src], use_cache=False)
    assert third.bytes_added < 16 << 10
    repo = Repository.open(url, PASSWORD)
    assert repo.check(read_data=True).errors == []
    assert {s.id for s in repo.snapshots()} == {first.snapshot_id, second.snapshot_id, third.snapshot_id}
    assert [r for s in _APPEND_ONLY for r in s.refused] == []
    target = tmp_path / "restore"
    repo.restore(repo.find_snapshot(third.snapshot_id), str(target), verify=True)
    assert_same_tree(src, restored(target, src))


def test_append_only_storage_refuses_deletes(tmp_path):
    from amber.errors import Locked

    s = AppendOnlyStorage(LocalStorage(str(tmp_path / "s"), create=True))
    s.put("a", b"x")
    with pytest.raises(Locked):
        s.delete("a")
    assert s.get("a") == b"x"
    assert s.refused == ["delete a"]


def test_an_interrupted_backup_through_append_only_storage(repo, repo_path, tmp_path, src):
    """Interrupted, and unable to clean up after itself: the repository still checks clean."""
    failing = FailingStorage(AppendOnlyStorage(repo.storage), fail_after=4)
    with pytest.raises(StorageError):
        with_storage(repo, failing, pack_size=SMALL_PACKS).backup([src])
    assert open_repo(repo_path).check(read_data=True).errors == []
    result = with_storage(open_repo(repo_path), AppendOnlyStorage(repo.storage)).backup([src])
    _restore_and_compare(repo_path, result.snapshot_id, src, tmp_path / "restore")
