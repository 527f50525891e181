"""Attributes of files restored by the worker processes (restore/workers.py): set there, and
what cannot be set comes back to the restore as warnings naming each file."""

import os
import shutil

import pytest

from .helpers import open_repo, restored, write

SHM = "/dev/shm"


@pytest.fixture
def restore_processes_at_once(monkeypatch):
    from amber.restore import restorer as restorer_mod

    monkeypatch.setattr(restorer_mod, "PROCESS_AFTER_FILES", 0)


@pytest.fixture
def shm(tmp_path):
    folder = os.path.join(SHM, f"amber-test-{os.getpid()}-{tmp_path.name}")
    try:
        os.mkdir(folder)
        os.setxattr(folder, "user.probe", b"1")
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"{SHM} has no user extended attributes")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_worker_processes_set_attributes_and_report_what_the_target_refuses(
    repo, repo_path, tmp_path, shm, restore_processes_at_once
):
    src = os.path.join(shm, "src")
    for i in range(40):
        path = os.path.join(src, f"f{i:02d}.txt")
        write(path, f"small file {i}\n".encode())
        os.setxattr(path, "user.small", b"%d" % i)
        if i % 4 == 0:  # two 3 KiB values: more than ext4 keeps beside an inode in one block
            os.setxattr(path, "user.big1", b"a" * 3072)
            os.setxattr(path, "user.big2", b"b" * 3072)
    snap = repo.find_snapshot(repo.backup([src]).snapshot_id)

    stats = open_repo(repo_path).restore(snap, os.path.join(shm, "out"), processes=True)
    assert stats.warnings == [] and stats.files_done == 40
    got = restored(os.path.join(shm, "out"), src)
    for i in range(40):
        name = f"f{i:02d}.txt"
        assert os.getxattr(os.path.join(got, name), "user.small") == b"%d" % i
        if i % 4 == 0:
            assert os.getxattr(os.path.join(got, name), "user.big2") == b"b" * 3072

    stats = open_repo(repo_path).restore(snap, str(tmp_path / "ext4"), processes=True)
    got = restored(tmp_path / "ext4", src)
    refused = sorted({w.split(": ")[0] for w in stats.warnings})
    assert refused == [os.path.join(got, f"f{i:02d}.txt") for i in range(0, 40, 4)], stats.warnings
    assert all("cannot set extended attribute user.big" in w for w in stats.warnings)
    assert stats.errors == [] and stats.files_done == 40
    assert os.getxattr(os.path.join(got, "f05.txt"), "user.small") == b"5"
