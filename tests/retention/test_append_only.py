"""A backup client whose storage credentials can only add: everything but deletion works."""

from __future__ import annotations

import datetime as dt

import pytest

from amber.errors import Locked
from amber.repository import Repository
from amber.storage.base import COMPLIANCE, GOVERNANCE, Retention
from amber.storage.wrappers import AppendOnlyStorage as AppendOnly

from .helpers import DAY, backup, data_keys, make_source, open_repo, packs_of, rand, restored, tree_digest


def append_only_client(path, clock) -> tuple[Repository, AppendOnly]:
    admin = open_repo(path, clock)  # opened as usual, then reached through the wrapper
    wrapped = AppendOnly(admin.storage)
    return Repository(wrapped, admin.keys, admin.config, admin.key_id, clock), wrapped


def test_an_append_only_client_backs_up_lists_restores_and_checks(repo, repo_path, clock, tmp_path):
    client, storage = append_only_client(repo_path, clock)
    src = make_source(tmp_path / "src", {"a.bin": rand(60_000, "a"), "b.txt": b"b" * 10_000})
    s1 = backup(client, src, clock=clock)
    s2 = backup(client, src, clock=clock, mode=COMPLIANCE, seconds=5 * DAY)  # reuses s1's data
    make_source(tmp_path / "src", {"a.bin": rand(60_000, "a"), "c.bin": rand(30_000, "c")})
    s3 = backup(client, src, clock=clock, mode=GOVERNANCE, seconds=DAY)
    assert [s.id for s in client.snapshots()] == [s1.id, s2.id, s3.id]
    listing = [client.snapshot_json(s) for s in client.snapshots()]
    assert [d["retention"]["mode"] if d["retention"] else None for d in listing] == [None, COMPLIANCE, GOVERNANCE]
    # the lock of s2 reached the data it reused from s1, by extension only
    for key in packs_of(client, s1):
        r = client.storage.stat(key).retention
        assert r is not None and r.mode == COMPLIANCE and r.until >= client.protection(s2).until
    want = tree_digest(src)
    client.restore(client.find_snapshot(s3.id), str(tmp_path / "t3"))
    assert tree_digest(restored(tmp_path / "t3", src)) == want
    rep = client.check(read_data=True)
    assert rep.ok, rep.errors
    client.hold(s3, "kept for the auditors")
    client.lock(s1, COMPLIANCE, clock.now() + dt.timedelta(days=2))
    assert storage.refused == [], "nothing the client did needed more than adding"
    assert open_repo(repo_path, clock).check(read_data=True).ok


def test_an_append_only_client_cannot_delete_or_shorten(repo, repo_path, clock, tmp_path):
    client, storage = append_only_client(repo_path, clock)
    src = make_source(tmp_path / "src", {"a.bin": rand(60_000, "a")})
    s1 = backup(client, src, clock=clock)  # not locked at all
    s2 = backup(client, src, clock=clock, mode=GOVERNANCE, seconds=DAY)
    before = data_keys(client)
    with pytest.raises(Locked):
        client.forget([s1])
    with pytest.raises(Locked):
        client.forget([s2], bypass_governance=True)
    with pytest.raises(Locked):
        client.lock(s2, GOVERNANCE, clock.now() + dt.timedelta(minutes=5), bypass_governance=True)
    client.hold(s1, "case")
    with pytest.raises(Locked):
        client.release(s1)
    with pytest.raises(Locked):
        client.storage.set_retention(f"snapshots/{s2.id}", Retention(GOVERNANCE, clock.now()), bypass_governance=True)
    try:
        client.prune()
    except Locked:
        pass
    admin = open_repo(repo_path, clock)
    assert {s.id for s in admin.snapshots()} == {s1.id, s2.id}
    assert data_keys(admin) >= before
    assert admin.check(read_data=True).ok


def test_a_refused_release_leaves_the_snapshot_held(repo, repo_path, clock, tmp_path):
    """A client that may not clear legal holds tries to release one: storage refuses, and the
    repository's record must not claim a release that did not happen."""
    src = make_source(tmp_path / "src", {"a.bin": rand(20_000, "a")})
    snap = backup(repo, src, clock=clock)
    repo.hold(snap, "case 9")
    clock.advance(60)
    client, storage = append_only_client(repo_path, clock)
    with pytest.raises(Locked):
        client.release(client.find_snapshot(snap.id))
    assert storage.refused
    admin = open_repo(repo_path, clock)
    s = admin.find_snapshot(snap.id)
    assert admin.storage.stat(f"snapshots/{s.id}").legal_hold
    assert admin.protection(s).hold is True, "the events say released, the storage says held"
    clock.advance(60)
    admin.release(s)  # the administrator can still release it properly
    admin.forget([s])
