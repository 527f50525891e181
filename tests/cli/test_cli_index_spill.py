"""With the index's records moved to disk (a memory budget of 0 MiB), every command that
reads or changes the index works as with them in memory."""

from __future__ import annotations

import os

import pytest

from cli_helpers import assert_same_tree, restored_root, set_old_mtimes, write

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
