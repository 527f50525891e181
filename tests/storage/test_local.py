"""The local-folder backend: the storage contract, plus what only a filesystem can get wrong."""

import functools
import os
import stat
import subprocess

import pytest

from amber.errors import AlreadyExists, NotFound, StorageError
from amber.storage.local import LocalStorage
from amber.testing import StorageContract


class TestLocalStorage(StorageContract):
    def make_storage(self, tmp_path, clock):
        s = LocalStorage(str(tmp_path / "store"), create=True)
        s.clock = clock
        return s

    def client_factory(self, storage):
        return functools.partial(LocalStorage, storage.root)


@pytest.fixture
def local(tmp_path):
    return LocalStorage(str(tmp_path / "store"), create=True)


def _dot_files(root):
    found = []
    for folder, dirs, files in os.walk(root):
        found += [os.path.join(folder, n) for n in dirs + files if n.startswith(".")]
    return found


def test_stored_files_are_read_only(local):
    local.put("config", b"c")
    local.put("data/ab/abcd", b"d" * 1000)
    local.put("empty", b"")
    for key in ("config", "data/ab/abcd", "empty"):
        mode = os.stat(os.path.join(local.root, *key.split("/"))).st_mode
        assert stat.S_ISREG(mode)
        assert stat.S_IMODE(mode) == 0o444, f"{key}: mode {oct(stat.S_IMODE(mode))}"


def test_objects_are_plain_files_under_their_keys(local):
    local.put("data/ab/abcd", b"payload")
    with open(os.path.join(local.root, "data", "ab", "abcd"), "rb") as f:
        assert f.read() == b"payload"


def test_no_temporary_files_are_left_behind(local):
    for i in range(20):
        local.put(f"data/{i % 4:02x}/obj{i}", os.urandom(100 * i))
    for i in range(5):
        with pytest.raises(AlreadyExists):
            local.put(f"data/{i % 4:02x}/obj{i}", b"again")
    assert _dot_files(local.root) == []


def test_no_temporary_files_are_left_after_a_race(tmp_path):
    import threading

    local = LocalStorage(str(tmp_path / "store"), create=True)
    barrier = threading.Barrier(8)

    def client(i):
        barrier.wait()
        for k in range(10):
            try:
                local.put(f"race/{k}", b"x" * i)
            except AlreadyExists:
                pass

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _dot_files(local.root) == []
    assert len(list(local.list("race/"))) == 10


def test_temporary_files_of_a_crashed_writer_are_not_listed(local):
    local.put("data/ab/real", b"r")
    local.put("top", b"t")
    for folder in (local.root, os.path.join(local.root, "data", "ab")):
        with open(os.path.join(folder, ".tmp-4242-0123456789ab"), "wb") as f:
            f.write(b"half a pack")
    os.makedirs(os.path.join(local.root, ".trash"))
    with open(os.path.join(local.root, ".trash", "old"), "wb") as f:
        f.write(b"x")
    assert {i.key for i in local.list()} == {"data/ab/real", "top"}
    assert {i.key for i in local.list("data/ab/")} == {"data/ab/real"}
    assert {i.key for i in local.list("data/")} == {"data/ab/real"}
    # a later put of the same folder is not disturbed by the leftover
    local.put("data/ab/next", b"n")
    assert local.get("data/ab/next") == b"n"


def test_a_missing_root_lists_nothing(tmp_path):
    s = LocalStorage(str(tmp_path / "nowhere"))
    assert list(s.list()) == []
    with pytest.raises(NotFound):
        s.get("config")
    assert not s.exists("config")


@pytest.fixture
def tiny_fs(tmp_path):
    """A 1 MiB tmpfs, so the next write fills the disk."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_is_a_storage_error(tiny_fs):
    s = LocalStorage(str(tiny_fs / "repo"), create=True)
    s.put("small", b"s" * 1000)
    with pytest.raises(StorageError) as info:
        s.put("data/00/big", os.urandom(2 << 20))
    assert "space" in str(info.value)
    assert not s.exists("data/00/big")
    assert _dot_files(s.root) == []  # the failed write cleaned up after itself
    assert s.get("small") == b"s" * 1000
    s.put("after", b"a" * 1000)  # the space the failed write took is free again
    assert s.get("after") == b"a" * 1000
