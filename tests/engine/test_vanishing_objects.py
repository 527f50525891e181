"""Readers fail closed and keep going: an object deleted between the listing and the read (a
`forget` or `prune` running beside) is simply gone, never fatal."""

from __future__ import annotations

import os

from amber.format import layout
from amber.repository import Repository
from amber.storage import StorageWrapper

from .helpers import open_repo, small_tree, write


class DeletedBeside(StorageWrapper):
    """Real storage where another client deletes each object that was under `prefixes` when this
    client started, just after it is listed and before this client reads it."""

    def __init__(self, inner, prefixes) -> None:
        super().__init__(inner)
        self.doomed = {i.key for p in prefixes for i in inner.list(p)}
        self.deleted: list[str] = []

    def list(self, prefix=""):
        for info in self.inner.list(prefix):
            if info.key in self.doomed and not self.deleted:
                # deleted all at once while this listing is under way: the backend meets the
                # ones it has not reached yet as vanished files
                for key in sorted(self.doomed):
                    self.inner.delete(key)
                    self.deleted.append(key)
            yield info


def beside(repo: Repository, *prefixes) -> tuple[Repository, DeletedBeside]:
    storage = DeletedBeside(repo.storage, prefixes)
    return Repository(storage, repo.keys, repo.config, repo.key_id, repo.clock), storage


def test_a_backup_goes_on_when_a_snapshot_vanishes_beside_it(repo, tmp_path):
    src = small_tree(tmp_path / "src")
    repo.backup([src])
    write(os.path.join(src, "other.txt"), b"other")
    repo.backup([src])
    client, storage = beside(open_repo(repo.storage.root), layout.SNAPSHOTS)
    write(os.path.join(src, "new.txt"), b"new")
    res = client.backup([src])
    assert storage.deleted, "the earlier snapshot was deleted beside the backup"
    assert [s.id for s in open_repo(storage.inner.root).snapshots()] == [res.snapshot_id]
    assert client.snapshot_errors == []


def test_events_and_records_that_vanish_are_skipped(repo, tmp_path):
    src = small_tree(tmp_path / "src")
    sid = repo.backup([src]).snapshot_id
    repo.event_store.write(sid, "hold", None, reason="case 1")  # an event object without a storage hold
    client, storage = beside(open_repo(repo.storage.root), layout.LOCKS, layout.RUNNING, layout.PRUNE)
    assert client.events() == {}
    assert client.event_store.problems() == []
    client.load_index()
    assert [s.id for s in client.snapshots()] == [sid]
    assert any(k.startswith(layout.LOCKS) for k in storage.deleted)
