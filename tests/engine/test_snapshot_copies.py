"""A backup reads snapshot documents through local copies: each stored one is fetched at most once."""

from __future__ import annotations

import os

from amber.format import layout

from .helpers import open_repo, set_past_mtimes, small_tree


def _counting(repo) -> list[str]:
    """The snapshot documents `repo` fetches from storage from now on."""
    fetched: list[str] = []
    real = repo.storage.get

    def get(key, *args, **kwargs):
        if key.startswith(layout.SNAPSHOTS):
            fetched.append(layout.last(key))
        return real(key, *args, **kwargs)

    repo.storage.get = get
    return fetched


def test_snapshots_are_fetched_once_then_read_from_their_copies(repo, repo_path, tmp_path):
    src = str(tmp_path / "src")
    small_tree(src)
    set_past_mtimes(src)
    sids = [open_repo(repo_path).backup([src]).snapshot_id for _ in range(3)]
    copies = os.path.join(repo.cache_dir(), "snapshots")
    assert sorted(os.listdir(copies)) == sorted(sids)

    client = open_repo(repo_path)
    fetched = _counting(client)
    sids.append(client.backup([src]).snapshot_id)
    assert fetched == []  # every earlier snapshot came from its copy, the new one was just written

    for name in os.listdir(copies):
        os.unlink(os.path.join(copies, name))
    with open(os.path.join(copies, "junk"), "wb") as f:
        f.write(b"left over")
    client = open_repo(repo_path)
    fetched = _counting(client)
    client.backup([src])
    assert sorted(fetched) == sorted(sids)  # once each, not once per reader within the backup
    assert "junk" not in os.listdir(copies)


def test_a_damaged_copy_is_replaced_from_storage(repo, repo_path, tmp_path):
    src = str(tmp_path / "src")
    small_tree(src)
    first = repo.backup([src]).snapshot_id
    copy = os.path.join(repo.cache_dir(), "snapshots", first)
    good = open(copy, "rb").read()
    with open(copy, "wb") as f:
        f.write(good[:-1] + bytes([good[-1] ^ 1]))
    client = open_repo(repo_path)
    fetched = _counting(client)
    client.backup([src])
    assert fetched == [first]
    assert open(copy, "rb").read() == good
    assert next(s.id for s in open_repo(repo_path).snapshots()) == first


def test_check_reads_storage_not_the_copies(repo, repo_path, tmp_path):
    src = str(tmp_path / "src")
    small_tree(src)
    sid = repo.backup([src]).snapshot_id
    client = open_repo(repo_path)
    fetched = _counting(client)
    client.check()
    assert sid in fetched
