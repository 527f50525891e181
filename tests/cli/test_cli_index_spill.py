"""With the index's records moved to disk (a memory budget of 0 MiB), every command that
reads or changes the index works as with them in memory."""

from __future__ import annotations

import os
import subprocess

import pytest

from cli_helpers import IS_ROOT, assert_same_tree, restored_root, set_old_mtimes, write

pytestmark = pytest.mark.subprocess


def test_backup_restore_check_prune_with_the_index_on_disk(repo, tmp_path):
    env = repo.env(AMBER_INDEX_MEMORY=0)
    src = tmp_path / "src"
    for i in range(300):
        write(src / f"d{i % 7}" / f"f{i}.bin", os.urandom(64) * (1 + i % 50))
    set_old_mtimes(src)
    first = repo.json("backup", src, "--json", env=env)
    write(src / "d1" / "new.bin", os.urandom(5000))
    second = repo.json("backup", src, "--json", env=env)
    assert second["files_new"] == 1 and second["files_unmodified"] == 300
    target = tmp_path / "restore"
    repo.run("restore", "latest", "--target", target, "--verify", env=env)
    assert_same_tree(src, restored_root(target, src))
    repo.run("forget", first["snapshot_id"], env=env)
    repo.run("prune", env=env)
    assert repo.json("check", "--read-data", env=env)["ok"]


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs for the cache folder (the index moves there past its budget)."""
    where = tmp_path / "small"
    where.mkdir()
    if subprocess.call(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", where]) != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield where
    subprocess.call(["umount", "-l", where])


@pytest.mark.skipif(not IS_ROOT, reason="mounts a small tmpfs")
def test_a_full_disk_under_the_moved_index_is_a_clear_error_and_loses_nothing(repo, tmp_path, small_disk):
    src = tmp_path / "src"
    for i in range(50):
        write(src / f"f{i}.bin", os.urandom(100))
    set_old_mtimes(src)
    first = repo.json("backup", src, "--json")

    # full before the index is read: the command stops before it writes anything
    subprocess.call(["dd", "if=/dev/zero", f"of={small_disk / 'filler'}", "bs=4k"], stderr=subprocess.DEVNULL)
    env = repo.env(AMBER_INDEX_MEMORY=0, XDG_CACHE_HOME=small_disk)
    before = sorted(p.name for p in (repo.repo / "snapshots").iterdir())
    r = repo.run("backup", src, env=env, expect=1)
    assert "could not be moved to disk" in r.stderr and str(small_disk) in r.stderr
    assert "Traceback" not in r.stderr

    # room for the index as it is, not as it grows: the backup stops when it must grow
    os.unlink(small_disk / "filler")
    for i in range(12_000):
        write(src / "many" / f"g{i}.bin", i.to_bytes(4, "big") * 8)
    r = repo.run("backup", src, env=env, expect=1)
    assert "could not be moved to disk" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in (repo.repo / "snapshots").iterdir()) == before

    # nothing lost: the repository checks clean, the first snapshot restores, and with room
    # the backup goes through
    assert repo.json("check", "--read-data")["ok"]
    target = tmp_path / "restore"
    repo.run("restore", first["snapshot_id"], "--target", target)
    with open(os.path.join(restored_root(target, src), b"f3.bin"), "rb") as f:
        assert f.read() == (src / "f3.bin").read_bytes()
    done = repo.json("backup", src, "--json", env=repo.env(AMBER_INDEX_MEMORY=0))
    assert done["files_new"] == 12_000
