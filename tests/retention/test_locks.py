"""Locks and holds on a repository in a local folder, with a fake clock.

A lock or hold on a snapshot must reach every object the snapshot needs, in
storage, where the storage itself enforces it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import pytest

from amber.clock import to_iso
from amber.errors import Locked, UsageError
from amber.retention.locks import needed_objects
from amber.retention.policy import KeepPolicy
from amber.storage.base import COMPLIANCE, GOVERNANCE, Retention

from .helpers import DAY, HOUR, backup, lock_records_dir, make_source, open_repo, pack_of_file, packs_of, rand

G, C = GOVERNANCE, COMPLIANCE


def later(repo, seconds: float) -> dt.datetime:
    return repo.clock.now() + dt.timedelta(seconds=seconds)


@pytest.fixture
def src(tmp_path):
    return make_source(tmp_path / "src", {"a.bin": rand(30_000, "a"), "b.txt": b"bee\n" * 500})


def all_objects(repo) -> set[str]:
    """Every object of a repository that holds one snapshot: what that snapshot needs."""
    keys = {"config"}
    for prefix in ("keys/", "data/", "index/", "snapshots/"):
        keys |= {i.key for i in repo.storage.list(prefix)}
    return keys


def assert_protected(repo, keys, mode, until) -> None:
    for key in sorted(keys):
        info = repo.storage.stat(key)
        assert info.retention is not None, f"{key} has no retention"
        assert info.retention.until >= until, f"{key}: {info.retention} ends before {until}"
        if mode == C:
            assert info.retention.mode == C, f"{key}: {info.retention.mode} under a compliance lock"


# -- what a lock reaches ------------------------------------------------------------------


@pytest.mark.parametrize("mode", [G, C])
def test_lock_reaches_every_object_the_snapshot_needs(repo, clock, src, mode):
    snap = backup(repo, src)
    expected = all_objects(repo)
    assert any(k.startswith("data/") for k in expected) and any(k.startswith("index/") for k in expected)
    assert {k for k in expected if k != "config" and not k.startswith("keys/")} <= needed_objects(repo, snap)
    until = later(repo, 10 * DAY)
    p = repo.lock(snap, mode, until)
    assert (p.mode, p.until) == (mode, until)
    assert_protected(repo, expected, mode, until)
    # the lock event itself lives as long as the lock
    events = [i.key for i in repo.storage.list(f"locks/{snap.id}/")]
    assert len(events) == 1
    assert_protected(repo, events, mode, until)
    assert repo.check().ok


@pytest.mark.parametrize("mode", [G, C])
def test_retention_given_at_backup_reaches_every_object(repo, clock, src, mode):
    snap = backup(repo, src, mode=mode, seconds=5 * DAY)
    until = dt.datetime.fromisoformat(snap.retention["until"].replace("Z", "+00:00"))
    assert snap.retention["mode"] == mode
    assert_protected(repo, all_objects(repo), mode, until)
    assert repo.check().ok


def test_a_key_added_to_a_locked_repository_keeps_the_invariant(repo, clock, src):
    """Every key file is among the objects a snapshot needs, so a key added while a snapshot is
    locked must be protected as long, or `check` reports the repository as damaged."""
    snap = backup(repo, src, mode=C, seconds=DAY)
    kid = repo.add_key("another password")
    assert f"keys/{kid}" in needed_objects(repo, snap)
    rep = repo.check()
    assert rep.ok, rep.errors
    r = repo.storage.stat(f"keys/{kid}").retention
    assert r is not None and r.mode == C and r.until >= repo.protection(snap).until


def test_a_lock_extension_reaches_a_key_added_later(repo, clock, src):
    snap = backup(repo, src, mode=C, seconds=DAY)
    kid = repo.add_key("another password")
    until = later(repo, 2 * DAY)
    repo.lock(snap, C, until)
    assert_protected(repo, [f"keys/{kid}"], C, until)
    assert repo.check().ok


def test_data_reused_by_a_locked_backup_is_locked_with_it(repo, clock, src):
    old = backup(repo, src, clock=clock)
    reused = pack_of_file(repo, old, f"{src}/a.bin")
    assert repo.storage.stat(reused).retention is None
    new = backup(repo, src, mode=C, seconds=3 * DAY)  # same files: their data is not stored again
    assert pack_of_file(repo, new, f"{src}/a.bin") == reused
    until = repo.protection(new).until
    assert_protected(repo, packs_of(repo, new), C, until)
    assert_protected(repo, [reused], C, until)
    assert repo.check().ok


@pytest.mark.parametrize("order", ["long first", "short first"])
def test_a_shared_pack_keeps_the_longer_lock(repo, clock, src, order):
    spans = [30 * DAY, 1 * DAY] if order == "long first" else [1 * DAY, 30 * DAY]
    a = backup(repo, src, clock=clock, mode=G, seconds=spans[0])
    b = backup(repo, src, clock=clock, mode=G, seconds=spans[1])
    shared = packs_of(repo, a) & packs_of(repo, b)
    assert shared, "the second backup should reuse the first one's data"
    long_snap = a if order == "long first" else b
    short_snap = b if order == "long first" else a
    long_until = repo.protection(long_snap).until
    for key in shared:
        assert repo.storage.stat(key).retention.until >= long_until
    # once the short lock is over, its snapshot goes; the shared data stays locked
    clock.advance(2 * DAY)  # unwitnessed, longer than the short lock: the clock guard asks for a check
    repo.forget([short_snap], trust_clock=True)
    for key in shared:
        with pytest.raises(Locked):
            repo.storage.delete(key)
    assert repo.check(read_data=True).ok


def test_a_compliance_backup_extends_shared_governance_packs_without_a_bypass(repo, clock, src):
    """S3 turns active governance into compliance only with the governance bypass, which a
    backup client must not hold: the shared pack keeps governance, long enough for both, and
    check notes it without failing."""
    a = backup(repo, src, clock=clock, mode=G, seconds=30 * DAY)
    b = backup(repo, src, clock=clock, mode=C, seconds=1 * DAY)
    shared = packs_of(repo, a) & packs_of(repo, b)
    assert shared
    for key in shared:
        r = repo.storage.stat(key).retention
        assert r.mode == G and r.until >= repo.protection(a).until >= repo.protection(b).until
    rep = repo.check()
    assert rep.ok, rep.errors
    assert any("governance retention" in w for w in rep.warnings)


def test_compliance_on_one_snapshot_makes_a_shared_pack_compliance(repo, clock, src):
    a = backup(repo, src, clock=clock, mode=C, seconds=1 * DAY)
    b = backup(repo, src, clock=clock, mode=G, seconds=30 * DAY)
    for key in packs_of(repo, a) & packs_of(repo, b):
        r = repo.storage.stat(key).retention
        assert r.mode == C and r.until >= repo.protection(b).until


# -- expiry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [G, C])
def test_a_lock_expires_with_the_clock_then_forget_works(repo, clock, src, mode):
    snap = backup(repo, src, mode=mode, seconds=2 * HOUR)
    with pytest.raises(Locked) as e:
        repo.forget([snap])
    assert mode in str(e.value) and snap.short_id in str(e.value)
    clock.advance(HOUR)
    with pytest.raises(Locked):
        repo.forget([snap])
    clock.advance(HOUR + 1)
    res = repo.forget([snap])
    assert res.remove == [snap.id]
    assert repo.snapshots() == []
    assert open_repo(repo.storage.root, clock).snapshots() == []


def test_forget_refuses_all_when_one_is_locked(repo, clock, tmp_path):
    free = backup(repo, make_source(tmp_path / "s1", {"f": b"1"}), clock=clock)
    locked = backup(repo, make_source(tmp_path / "s2", {"g": b"2"}), clock=clock, mode=G, seconds=DAY)
    with pytest.raises(Locked):
        repo.forget([free, locked])
    assert {s.id for s in repo.snapshots()} == {free.id, locked.id}


# -- compliance -----------------------------------------------------------------------------


def test_compliance_lock_cannot_be_shortened_or_downgraded(repo, clock, src):
    snap = backup(repo, src, mode=C, seconds=10 * DAY)
    until = repo.protection(snap).until
    with pytest.raises(Locked):
        repo.lock(snap, C, later(repo, DAY))
    with pytest.raises(Locked):
        repo.lock(snap, C, later(repo, DAY), bypass_governance=True)
    with pytest.raises(Locked):
        repo.lock(snap, G, later(repo, 20 * DAY))
    with pytest.raises(Locked):
        repo.lock(snap, G, later(repo, 20 * DAY), bypass_governance=True)
    p = repo.protection(snap)
    assert (p.mode, p.until) == (C, until)
    assert open_repo(repo.storage.root, clock).protection(snap) == p
    # nor through storage
    for key in needed_objects(repo, snap):
        with pytest.raises(Locked):
            repo.storage.set_retention(key, Retention(C, later(repo, DAY)))
        with pytest.raises(Locked):
            repo.storage.set_retention(key, Retention(G, until + dt.timedelta(days=1)), bypass_governance=True)


def test_compliance_lock_is_not_bypassed_by_forget(repo, clock, src):
    snap = backup(repo, src, mode=C, seconds=10 * DAY)
    with pytest.raises(Locked) as e:
        repo.forget([snap], bypass_governance=True)
    assert "compliance" in str(e.value)
    with pytest.raises(Locked):
        repo.storage.delete(f"snapshots/{snap.id}", bypass_governance=True)
    for key in packs_of(repo, snap):
        with pytest.raises(Locked):
            repo.storage.delete(key, bypass_governance=True)
    assert [s.id for s in repo.snapshots()] == [snap.id]


def test_compliance_lock_can_be_extended(repo, clock, src):
    snap = backup(repo, src, mode=C, seconds=DAY)
    until = later(repo, 40 * DAY)
    p = repo.lock(snap, C, until)
    assert (p.mode, p.until) == (C, until)
    assert_protected(repo, needed_objects(repo, snap), C, until)
    clock.advance(2 * DAY)
    with pytest.raises(Locked):
        repo.forget([snap], bypass_governance=True)


def test_governance_can_be_upgraded_to_compliance(repo, clock, src):
    snap = backup(repo, src, mode=G, seconds=DAY)
    until = later(repo, 2 * DAY)
    repo.lock(snap, C, until)
    assert_protected(repo, needed_objects(repo, snap), C, until)
    with pytest.raises(Locked):
        repo.forget([snap], bypass_governance=True)


# -- governance -----------------------------------------------------------------------------


def test_governance_is_lifted_only_with_bypass(repo, clock, src):
    snap = backup(repo, src, mode=G, seconds=10 * DAY)
    with pytest.raises(Locked) as e:
        repo.forget([snap])
    assert e.value.remedy == "bypass-governance"
    with pytest.raises(Locked):
        repo.lock(snap, G, later(repo, HOUR))
    with pytest.raises(Locked):
        repo.storage.delete(f"snapshots/{snap.id}")
    assert repo.protection(snap).until > later(repo, 9 * DAY)
    res = repo.forget([snap], bypass_governance=True)
    assert res.remove == [snap.id] and repo.snapshots() == []
    forget_events = [e for evs in repo.events().values() for e in evs if e["type"] == "forget"]
    assert len(forget_events) == 1 and forget_events[0]["bypass_governance"] is True


def test_governance_shortened_with_bypass(repo, clock, src):
    snap = backup(repo, src, mode=G, seconds=10 * DAY)
    p = repo.lock(snap, G, later(repo, HOUR), bypass_governance=True)
    assert p.until == later(repo, HOUR)
    ev = [e for e in repo.events()[snap.id] if e["type"] == "lock"]
    assert len(ev) == 1 and ev[0]["bypass_governance"] is True
    with pytest.raises(Locked):
        repo.forget([snap])
    clock.advance(HOUR + 1)
    repo.forget([snap])
    assert repo.snapshots() == []


# -- legal holds ----------------------------------------------------------------------------


@pytest.mark.parametrize("retention", [None, "expired", G, C])
def test_a_hold_blocks_forget_whatever_the_retention(repo, clock, src, retention):
    if retention is None:
        snap = backup(repo, src, clock=clock)
    elif retention == "expired":
        snap = backup(repo, src, clock=clock, mode=C, seconds=HOUR)
        clock.advance(2 * HOUR)
    else:
        snap = backup(repo, src, clock=clock, mode=retention, seconds=HOUR)
    p = repo.hold(snap, "litigation 2030-17")
    assert p.hold and p.hold_reason == "litigation 2030-17"
    with pytest.raises(Locked) as e:
        repo.forget([snap])
    assert "legal hold" in str(e.value) and "litigation 2030-17" in str(e.value)
    with pytest.raises(Locked):
        repo.forget([snap], bypass_governance=True)
    clock.advance(20 * DAY)  # every lock is over; the hold has no end
    with pytest.raises(Locked):
        repo.forget([snap], bypass_governance=True)
    for key in needed_objects(repo, snap):
        info = repo.storage.stat(key)
        assert info.legal_hold, key
        with pytest.raises(Locked):
            repo.storage.delete(key, bypass_governance=True)
    assert repo.snapshot_json(snap)["legal_hold"] is True
    clock.advance(60)
    repo.release(snap)
    assert repo.snapshot_json(snap)["legal_hold"] is False
    repo.forget([snap], trust_clock=True)  # 20 unwitnessed days ran past the lock: the clock was checked
    assert repo.snapshots() == []


def test_hold_needs_a_reason(repo, clock, src):
    snap = backup(repo, src, clock=clock)
    with pytest.raises(UsageError):
        repo.hold(snap, "  ")
    with pytest.raises(UsageError):
        repo.release(snap)  # not held


def test_release_clears_only_what_no_other_held_snapshot_needs(repo, clock, tmp_path):
    shared = rand(40_000, "shared")
    a = backup(repo, make_source(tmp_path / "a", {"shared.bin": shared, "only-a.bin": rand(30_000, "a")}), clock=clock)
    b = backup(repo, make_source(tmp_path / "b", {"shared.bin": shared, "only-b.bin": rand(30_000, "b")}), clock=clock)
    c = backup(repo, make_source(tmp_path / "c", {"only-c.bin": rand(30_000, "c")}), clock=clock)
    need_a, need_b, need_c = (needed_objects(repo, s) for s in (a, b, c))
    assert {k for k in need_a & need_b if k.startswith("data/")}, "a and b should share a pack"
    repo.hold(a, "case A")
    clock.advance(60)
    repo.hold(b, "case B")
    clock.advance(60)
    for key in need_c - need_a - need_b:
        assert not repo.storage.stat(key).legal_hold, key
    repo.release(a)
    clock.advance(60)
    need_a, need_b = needed_objects(repo, a), needed_objects(repo, b)
    for key in need_b:
        assert repo.storage.stat(key).legal_hold, f"{key} is needed by held snapshot b"
    for key in need_a - need_b:
        assert not repo.storage.stat(key).legal_hold, f"{key} is needed only by released snapshot a"
    repo.forget([a])
    with pytest.raises(Locked):
        repo.forget([b])
    repo.release(b)
    clock.advance(60)
    for key in needed_objects(repo, b):
        assert not repo.storage.stat(key).legal_hold, key
    repo.forget([b])


def test_hold_and_release_in_one_clock_tick(repo, clock, src):
    """The clock does not move between a hold and its release: the release still wins."""
    snap = backup(repo, src, clock=clock)
    for i in range(8):
        repo.hold(snap, f"case {i}")
        p = repo.release(snap)
        assert p.hold is False, f"round {i}: the release was ordered before the hold"
        assert repo.protection(snap).hold is False


# -- forget by policy ---------------------------------------------------------------------


def test_forget_policy_keeps_locked_and_held_snapshots_and_lists_them(repo, clock, src, tmp_path):
    s1 = backup(repo, src, clock=clock, mode=G, seconds=10 * DAY, step=HOUR)
    s2 = backup(repo, src, clock=clock, step=HOUR)
    s3 = backup(repo, src, clock=clock, mode=C, seconds=10 * DAY, step=HOUR)
    s4 = backup(repo, src, clock=clock, step=HOUR)
    s5 = backup(repo, src, clock=clock, step=HOUR)
    s6 = backup(repo, src, clock=clock, step=HOUR)
    repo.hold(s4, "keep s4")
    clock.advance(60)
    dry = repo.forget_policy(KeepPolicy(last=1), dry_run=True)
    res = repo.forget_policy(KeepPolicy(last=1))
    for r in (dry, res):
        assert set(r.keep) == {s1.id, s3.id, s4.id, s6.id}
        assert set(r.locked) == {s1.id, s3.id, s4.id}
        assert set(r.remove) == {s2.id, s5.id}
        assert set(r.keep).isdisjoint(r.remove)
        doc = r.to_json()
        assert set(doc["locked"]) == {s1.id, s3.id, s4.id}
        assert "legal hold" in doc["protected_by"][s4.id] and "compliance" in doc["protected_by"][s3.id]
    assert {s.id for s in repo.snapshots()} == {s1.id, s3.id, s4.id, s6.id}


def test_forget_policy_with_an_empty_policy_removes_nothing(repo, clock, src):
    backup(repo, src, clock=clock)
    backup(repo, src, clock=clock)
    try:
        res = repo.forget_policy(KeepPolicy())
    except UsageError:
        pass
    else:
        assert res.remove == []
    assert len(repo.snapshots()) == 2


# -- the local backend's lock records ------------------------------------------------------


def _add_record_by_hand(repo_path, key: str, record: dict) -> None:
    """What someone who may add files under .locks/ but not remove them could do."""
    folder = lock_records_dir(repo_path, key)
    seq = max(int(n) for n in os.listdir(folder) if n.isdigit()) + 1
    (folder / f"{seq:08d}").write_text(json.dumps(record))


def test_a_record_added_by_hand_cannot_shorten_compliance(repo, repo_path, clock, src):
    snap = backup(repo, src, mode=C, seconds=10 * DAY)
    key = f"snapshots/{snap.id}"
    before = repo.storage.stat(key).retention
    for rec in (
        {"retention": {"mode": C, "until": to_iso(later(repo, HOUR))}},
        {"retention": {"mode": G, "until": to_iso(later(repo, HOUR))}, "bypass_governance": True},
    ):
        _add_record_by_hand(repo_path, key, dict(rec, time=to_iso(clock.now())))
        assert repo.storage.stat(key).retention == before
    with pytest.raises(Locked):
        repo.storage.delete(key, bypass_governance=True)


def test_a_record_added_by_hand_cannot_shorten_governance_by_upgrading_it(repo, repo_path, clock, src):
    """Governance until day 10, then a compliance record until 1 hour with no bypass: switching
    the mode is no bypass, so the object stays protected at least until day 10."""
    snap = backup(repo, src, mode=G, seconds=10 * DAY)
    key = f"snapshots/{snap.id}"
    before = repo.storage.stat(key).retention
    _add_record_by_hand(
        repo_path, key, {"retention": {"mode": C, "until": to_iso(later(repo, HOUR))}, "time": to_iso(clock.now())}
    )
    after = repo.storage.stat(key).retention
    assert after.until >= before.until, after
    clock.advance(2 * HOUR)
    with pytest.raises(Locked):
        repo.storage.delete(key)


# -- check --------------------------------------------------------------------------------


def test_check_reports_a_lock_record_removed_by_hand(repo, repo_path, clock, src):
    snap = backup(repo, src, mode=C, seconds=10 * DAY)
    assert repo.check().ok
    pack = sorted(packs_of(repo, snap))[0]
    records = lock_records_dir(repo_path, pack)
    assert records.is_dir() and any(records.iterdir())
    shutil.rmtree(records)
    assert repo.storage.stat(pack).retention is None
    for r in (repo, open_repo(repo_path, clock)):
        rep = r.check()
        assert not rep.ok
        assert any(e.startswith("protection:") and pack in e for e in rep.errors), rep.errors


def test_check_reports_a_missing_hold(repo, repo_path, clock, src):
    snap = backup(repo, src, clock=clock)
    repo.hold(snap, "case")
    key = f"snapshots/{snap.id}"
    shutil.rmtree(lock_records_dir(repo_path, key))
    rep = open_repo(repo_path, clock).check()
    assert any(e.startswith("protection:") and key in e for e in rep.errors), rep.errors
