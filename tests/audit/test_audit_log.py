"""The audit log of a real repository: one event per change, in order; every damaged, deleted,
rolled-back or rewritten log object found and named; crashes between a change and its event
found and repaired."""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil

import pytest

from amber.audit import checkpoint as cpfmt
from amber.audit import merkle
from amber.audit.log import CHECKPOINTS, ENTRIES
from amber.audit.snapshot_events import RECOVER_AFTER
from amber.clock import from_iso, to_iso
from amber.errors import IntegrityError
from amber.format import tree as treefmt
from amber.format.canonical import utf8_json as canonical

from audit_helpers import (
    backup,
    copy_repo,
    events,
    flip,
    init_repo,
    key_of,
    log_files,
    open_repo,
    positions,
    rand,
    replace_repo,
    rewrite_file,
    write,
)

pytestmark = pytest.mark.usefixtures("each_log_layout")  # tests/audit/test_tiles.py: what only tiles have

DAY = dt.timedelta(days=1)


def types(repo) -> list[str]:
    return [ev["type"] for ev in events(repo)]


def all_messages(rep) -> list[str]:
    return list(rep.errors) + list(rep.warnings)


@pytest.fixture
def src(tmp_path):
    root = tmp_path / "src"
    write(root / "a.txt", b"alpha\n")
    write(root / "docs" / "b.bin", rand(30_000, "b"))
    return root


@pytest.fixture
def busy(repo, repo_path, src):
    """init, two backups and a lock: a log of four entries and four checkpoints."""
    s1 = backup(repo, src)
    write(src / "c.txt", b"charlie\n")
    s2 = backup(repo, src)
    repo.lock(s1, "governance", repo.clock.now() + DAY)
    assert types(repo) == ["init", "snapshot", "snapshot", "lock"]
    return {"repo": repo, "path": repo_path, "s1": s1, "s2": s2, "src": src}


# -- one event per change ---------------------------------------------------------------


@pytest.mark.entries_only
def test_every_change_is_one_event_in_order(repo, repo_path, src):
    s1 = backup(repo, src)
    write(src / "only-in-s2.bin", rand(200_000, "s2"))
    s2 = backup(repo, src)
    kid = repo.add_key("a second password")  # before any lock: key files inherit the longest one
    assert repo.remove_key(kid) == kid
    until = repo.clock.now() + DAY
    repo.lock(s1, "governance", until)
    repo.hold(s2, "case 42")
    repo.release(s2)
    repo.forget([s2])
    pruned = repo.prune()
    assert pruned.packs_deleted, "the data only s2 used is gone"
    chk = repo.check()

    evs = events(repo)
    assert [(ev["type"], ev.get("snapshot")) for ev in evs] == [
        ("init", None),
        ("snapshot", s1.id),
        ("snapshot", s2.id),
        ("key-add", None),
        ("key-revoke", None),
        ("key-remove", None),
        ("lock", s1.id),
        ("hold", s2.id),
        ("release", s2.id),
        ("forget", s2.id),
        ("prune", None),
        ("check", None),
    ]
    assert [ev["seq"] for ev in evs] == list(range(len(evs)))
    times = [from_iso(ev["time"]) for ev in evs]
    assert times == sorted(times)
    for ev in evs:
        assert ev["v"] == 1 and set(ev["actor"]) == {"host", "user", "key"}
        assert ev["actor"]["key"] == repo.key_id[:16]
    d = [ev["details"] for ev in evs]
    assert d[0]["repository"] == repo.id and d[0]["key"] == repo.key_id
    assert d[0]["public_key"] == repo.audit.vkey()
    for i, s in ((1, s1), (2, s2)):
        assert d[i]["content_root"] == s.content_root and d[i]["tree"] == s.tree
        assert d[i]["time"] == to_iso(s.time) and d[i]["paths"] == s.paths and d[i]["recovered"] is False
    assert d[3]["key"] == kid and d[4]["key"] == kid and d[5]["key"] == kid
    assert d[6]["mode"] == "governance" and d[6]["until"] == to_iso(until)
    assert d[7]["reason"] == "case 42" and d[8]["reason"] == "case 42"
    assert d[9]["snapshot_time"] == to_iso(s2.time)
    assert d[10]["packs_deleted"] == pruned.packs_deleted and d[10]["bytes_freed"] == pruned.bytes_freed
    assert d[11]["ok"] == chk.ok and d[11]["errors"] == len(chk.errors) and d[11]["read_data"] is False

    # one sealed entry and one signed checkpoint per event, every checkpoint a prefix of the log
    n = len(evs)
    assert sorted(i.key for i in repo.storage.list(ENTRIES)) == [f"{ENTRIES}{k:012d}" for k in range(n)]
    assert sorted(i.key for i in repo.storage.list(CHECKPOINTS)) == [f"{CHECKPOINTS}{k:012d}" for k in range(1, n + 1)]
    leaves = repo.audit.leaves(repo.audit.entries())
    for k in range(1, n + 1):
        cp = cpfmt.verify(repo.storage.get(f"{CHECKPOINTS}{k:012d}"), repo.audit.origin, repo.audit.public)
        assert cp.size == k and cp.root == merkle.root(leaves[:k])
    rep = open_repo(repo_path).verify_audit_log()
    assert rep.ok, rep.errors
    assert rep.size == n and rep.checkpoints == n and rep.warnings == []


@pytest.mark.entries_only
def test_entries_are_sealed_but_leaves_hash_the_canonical_plaintext(busy):
    repo = busy["repo"]
    for seq, (ev, raw) in enumerate(repo.audit.entries()):
        stored = repo.storage.get(f"{ENTRIES}{seq:012d}")
        assert raw not in stored and b'"type"' not in stored, "entries are encrypted at rest"
        assert stored[:3] == bytes((1, 1, 10)), "envelope v1, AES-256-GCM, kind 10 (log entry)"
        assert raw == canonical(ev) and ev["seq"] == seq
        assert repo.audit.leaves([(ev, raw)]) == [merkle.leaf_hash(raw)]


def test_the_snapshot_event_matches_the_stored_snapshot_and_its_content(busy):
    repo = busy["repo"]
    logged = {ev["snapshot"]: ev for ev in events(repo) if ev["type"] == "snapshot"}
    for snap in (busy["s1"], busy["s2"]):
        stored = open_repo(busy["path"]).load_snapshot(snap.id)
        ev = logged[snap.id]
        assert ev["details"]["content_root"] == stored.content_root
        assert ev["details"]["tree"] == stored.tree
        # the content root really is the Merkle digest of the snapshot's root tree
        assert treefmt.digest(treefmt.encode(repo.load_tree(stored.tree))) == stored.content_root


def test_a_snapshot_whose_event_disagrees_with_it_is_reported(busy):
    repo = busy["repo"]
    doc = dict(busy["s2"].doc, tags=["planted"])
    sid = repo.save_snapshot(doc)
    repo.log_event("snapshot", sid, content_root="00" * 32, tree=busy["s2"].tree)
    rep = repo.verify_audit_log()
    assert any(sid[:8] in e and "does not match its event" in e for e in rep.errors), rep.errors


# -- damage, deletion ---------------------------------------------------------------------


@pytest.mark.entries_only
def test_every_log_object_with_a_flipped_byte_is_named(busy):
    repo, path = busy["repo"], busy["path"]
    files = log_files(path)
    assert len(files) == 8
    checked = 0
    for n, f in enumerate(files):
        key = key_of(path, f)
        original = f.read_bytes()
        # the last base64 character of a checkpoint's signature carries two padding bits that
        # base64 decoders ignore: a flip there may leave the signature as it was
        skip = {len(original) - 3} if key.startswith(CHECKPOINTS) else set()
        for pos in positions(len(original), seed=n, skip=skip):
            rewrite_file(f, flip(original, pos))
            try:
                rep = repo.verify_audit_log(remember=False)
            finally:
                rewrite_file(f, original)
            assert any(key in e for e in rep.errors), f"{key} byte {pos} flipped: {rep.errors}"
            checked += 1
    assert checked >= 40
    rep = repo.verify_audit_log()
    assert rep.ok, rep.errors


@pytest.mark.entries_only
def test_a_deleted_entry_is_reported(busy):
    repo, path = busy["repo"], busy["path"]
    os.unlink(path / "log" / "entries" / f"{1:012d}")
    rep = repo.verify_audit_log()
    assert any(f"{ENTRIES}{1:012d}" in e and "missing" in e for e in rep.errors), rep.errors


@pytest.mark.entries_only
def test_a_deleted_last_entry_is_reported(busy):
    repo, path = busy["repo"], busy["path"]
    os.unlink(path / "log" / "entries" / f"{3:012d}")
    rep = repo.verify_audit_log()
    assert rep.errors
    assert any("covers 4 entries" in e and "rolled back or its log truncated" in e for e in rep.errors), rep.errors


@pytest.mark.entries_only
@pytest.mark.parametrize("which", [2, 4], ids=["middle", "latest"])
def test_a_deleted_checkpoint_is_reported(busy, which):
    """Each append writes the checkpoint of its own size, so a missing one was deleted (or its
    writer stopped between entry and checkpoint): verify must say so, naming which."""
    repo, path = busy["repo"], busy["path"]
    os.unlink(path / "log" / "checkpoints" / f"{which:012d}")
    rep = repo.verify_audit_log()
    msgs = all_messages(rep)
    assert any(f"{CHECKPOINTS}{which:012d}" in m or ("checkpoint" in m and f" {which} " in m) for m in msgs), msgs


@pytest.mark.entries_only
def test_an_entry_moved_to_another_position_is_reported(busy):
    path = busy["path"]
    a, b = path / "log" / "entries" / f"{1:012d}", path / "log" / "entries" / f"{2:012d}"
    da, db = a.read_bytes(), b.read_bytes()
    rewrite_file(a, db)
    rewrite_file(b, da)
    rep = busy["repo"].verify_audit_log(remember=False)
    assert any(f"{ENTRIES}{1:012d}" in e for e in rep.errors), rep.errors


# -- rollback and fork ------------------------------------------------------------------


def test_an_old_copy_of_the_repository_put_back_is_refused(busy, tmp_path):
    repo, path, src = busy["repo"], busy["path"], busy["src"]
    old = tmp_path / "old-copy"
    copy_repo(path, old)
    write(src / "d.txt", b"delta\n")
    backup(repo, src)
    repo.hold(busy["s2"], "keep")
    assert len(events(repo)) == 6

    replace_repo(path, old)
    victim = open_repo(path)
    rep = victim.verify_audit_log()
    assert not rep.ok
    assert any("rolled back" in e for e in rep.errors), rep.errors
    snaps_before = {s.id for s in victim.snapshots()}
    write(src / "e.txt", b"echo\n")
    with pytest.raises(IntegrityError, match="rolled back"):
        victim.backup([str(src)])
    victim.refresh()
    assert {s.id for s in victim.snapshots()} == snaps_before, "no snapshot was written"
    assert len(events(victim)) == 4


def test_a_change_on_a_rolled_back_repository_is_refused_before_it_is_made(busy, tmp_path):
    """A forget on a rolled-back repository must not delete the snapshot and then fail to
    record it: the history is checked before the change, as a backup does."""
    repo, path = busy["repo"], busy["path"]
    old = tmp_path / "old-copy"
    copy_repo(path, old)
    repo.hold(busy["s1"], "keep")
    replace_repo(path, old)
    victim = open_repo(path)
    with pytest.raises(IntegrityError, match="rolled back"):
        victim.forget([victim.find_snapshot(busy["s2"].id)])
    victim.refresh()
    assert busy["s2"].id in {s.id for s in victim.snapshots()}, "the snapshot was deleted anyway"


def rewrite_history(path, keep: int, new_events: int, tmp_path, monkeypatch) -> None:
    """An attacker with the password and the disk drops the log after `keep` entries and writes
    other events in their place, from a client with no memory of the old log."""
    for folder, first in (("entries", keep), ("checkpoints", keep + 1)):
        for f in sorted((path / "log" / folder).iterdir()):
            if not f.name.startswith(".") and int(f.name) >= first:
                os.unlink(f)
    with monkeypatch.context() as m:
        m.setenv("XDG_STATE_HOME", str(tmp_path / "attacker-state"))
        attacker = open_repo(path)
        for i in range(new_events):
            attacker.log_event("check", read_data=False, ok=True, errors=0, forged=i)
        assert attacker.verify_audit_log().ok


@pytest.mark.entries_only
@pytest.mark.parametrize("new_events", [1, 3], ids=["same-size", "longer"])
def test_a_rewritten_history_is_reported_as_a_fork(busy, tmp_path, monkeypatch, new_events):
    path, src = busy["path"], busy["src"]
    rewrite_history(path, keep=3, new_events=new_events, tmp_path=tmp_path, monkeypatch=monkeypatch)
    victim = open_repo(path)
    rep = victim.verify_audit_log()
    assert any("rewritten or forked" in e for e in rep.errors), rep.errors
    write(src / "f.txt", b"foxtrot\n")
    with pytest.raises(IntegrityError, match="rewritten or forked"):
        victim.backup([str(src)])


def test_verify_against_a_checkpoint_kept_outside(busy, tmp_path, monkeypatch):
    repo, path, src = busy["repo"], busy["path"], busy["src"]
    early = repo.audit.latest_checkpoint()
    old = tmp_path / "old-copy"
    copy_repo(path, old)
    write(src / "g.txt", b"golf\n")
    backup(repo, src)
    kept = repo.audit.latest_checkpoint()
    assert cpfmt.parse(kept)[0].size == 5

    # a client that never saw this repository relies on the checkpoint given to it
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "fresh-client"))
    fresh = open_repo(path)
    for note in (early, kept):
        rep = fresh.verify_audit_log(external=note, remember=False)
        assert rep.ok, rep.errors
        assert rep.remembered is None

    replace_repo(path, old)
    fresh = open_repo(path)
    assert fresh.verify_audit_log(remember=False).ok, "without a checkpoint from outside, nothing tells"
    rep = fresh.verify_audit_log(external=kept, remember=False)
    assert any(e.startswith("the given checkpoint") and "rolled back" in e for e in rep.errors), rep.errors
    assert fresh.verify_audit_log(external=early, remember=False).ok


def test_an_external_checkpoint_of_another_repository_is_refused(busy, tmp_path):
    other = init_repo(tmp_path / "other-repo")
    rep = busy["repo"].verify_audit_log(external=other.audit.latest_checkpoint(), remember=False)
    assert any(e.startswith("the given checkpoint") for e in rep.errors), rep.errors


@pytest.mark.parametrize(
    "note",
    [
        b"",
        b"garbage",
        b"\xff\xfe",
        b"amber/x\n1\n\n\n",
        "amber/x\n1\n\u00e9AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 amber/x AAAA\n".encode(),
        "amber/x\n\u00b2\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 amber/x ".encode()
        + base64.b64encode(bytes(68))
        + b"\n",
    ],
    ids=["empty", "text", "not-utf8", "no-root", "non-ascii-root", "unicode-digit-size"],
)
def test_a_malformed_external_checkpoint_is_an_error_not_a_crash(busy, note):
    rep = busy["repo"].verify_audit_log(external=note, remember=False)
    assert any(e.startswith("the given checkpoint") for e in rep.errors), rep.errors


def test_a_damaged_remembered_checkpoint_is_an_error_not_a_crash(busy):
    repo = busy["repo"]
    state = repo.audit.state_path()
    with open(state, "wb") as f:
        f.write(b"not a checkpoint")
    rep = repo.verify_audit_log(remember=False)
    assert any(e.startswith("the checkpoint this client last verified") for e in rep.errors), rep.errors


def test_the_remembered_checkpoint_follows_the_log(busy):
    repo = busy["repo"]
    assert repo.audit.remembered() == repo.audit.latest_checkpoint()
    assert os.path.dirname(repo.audit.state_path()).endswith(os.path.join("amber", repo.id))
    rep = open_repo(busy["path"]).verify_audit_log()
    assert rep.ok and rep.remembered == 4


# -- a crash between a change and its event ---------------------------------------------------


def orphan_snapshot(repo, path, like, age: dt.timedelta) -> str:
    """What a backup that stopped after writing its snapshot, `age` ago, leaves behind."""
    doc = dict(like.doc, time=to_iso(repo.clock.now() - age), tags=["interrupted"])
    sid = repo.save_snapshot(doc)
    t = (repo.clock.now() - age).timestamp()
    os.utime(path / "snapshots" / sid, (t, t))
    return sid


def test_a_snapshot_without_its_event_is_reported_then_recorded_by_the_next_backup(busy):
    repo, path, src = busy["repo"], busy["path"], busy["src"]
    orphan = orphan_snapshot(repo, path, busy["s2"], RECOVER_AFTER + dt.timedelta(minutes=1))
    rep = open_repo(path).verify_audit_log()
    assert any(orphan[:8] in e and "no event" in e for e in rep.errors), rep.errors

    write(src / "h.txt", b"hotel\n")
    new = backup(open_repo(path), src)
    evs = events(repo)
    assert [(ev["type"], ev.get("snapshot"), ev["details"].get("recovered")) for ev in evs[4:]] == [
        ("snapshot", orphan, True),
        ("snapshot", new.id, False),
    ]
    assert evs[4]["details"]["content_root"] == busy["s2"].content_root
    rep = open_repo(path).verify_audit_log()
    assert rep.ok, rep.errors


def test_a_snapshot_another_backup_may_still_be_recording_is_left_to_it(busy):
    """A snapshot stored moments ago belongs to a backup that is about to log it: a concurrent
    backup must not log it too (as recovered), or the log would hold two events for it."""
    repo, path, src = busy["repo"], busy["path"], busy["src"]
    young = orphan_snapshot(repo, path, busy["s2"], dt.timedelta(seconds=5))
    write(src / "i.txt", b"india\n")
    new = backup(open_repo(path), src)
    assert [(ev["type"], ev.get("snapshot")) for ev in events(repo)[4:]] == [("snapshot", new.id)]
    # ... and once its own backup cannot still be running, the next backup records it
    os.utime(path / "snapshots" / young, (0, 0))
    write(src / "j.txt", b"juliett\n")
    newer = backup(open_repo(path), src)
    assert [(ev["type"], ev.get("snapshot"), ev["details"]["recovered"]) for ev in events(repo)[5:]] == [
        ("snapshot", young, True),
        ("snapshot", newer.id, False),
    ]
    assert open_repo(path).verify_audit_log().ok


def test_a_snapshot_deleted_behind_the_log_is_reported(busy):
    path = busy["path"]
    os.unlink(path / "snapshots" / busy["s2"].id)
    rep = open_repo(path).verify_audit_log()
    assert any(busy["s2"].id[:8] in e and "no forget event" in e for e in rep.errors), rep.errors


def test_a_forgotten_snapshot_is_not_reported(busy):
    repo = busy["repo"]
    repo.forget([busy["s2"]])
    rep = open_repo(busy["path"]).verify_audit_log()
    assert rep.ok, rep.errors


# -- what protects log objects -------------------------------------------------------------


@pytest.mark.entries_only
def test_log_objects_of_a_locked_snapshot_carry_its_retention(busy):
    repo = busy["repo"]
    evs = events(repo)
    lock_seq = next(ev["seq"] for ev in evs if ev["type"] == "lock")
    for key in (f"{ENTRIES}{lock_seq:012d}", f"{CHECKPOINTS}{lock_seq + 1:012d}"):
        info = repo.storage.stat(key)
        assert info.retention is not None and info.retention.mode == "governance"
        until = from_iso(evs[lock_seq]["details"]["until"])  # kept in whole seconds, never shorter
        assert until <= info.retention.until < until + dt.timedelta(seconds=1)
    # stored objects are read-only files, written once
    for f in log_files(busy["path"]):
        assert not os.stat(f).st_mode & 0o222


@pytest.mark.entries_only
def test_a_log_object_is_never_overwritten(busy):
    from amber.errors import AlreadyExists

    repo = busy["repo"]
    with pytest.raises(AlreadyExists):
        repo.storage.put(f"{ENTRIES}{0:012d}", b"x")
    with pytest.raises(AlreadyExists):
        repo.storage.put(f"{CHECKPOINTS}{1:012d}", b"x")


def test_a_fresh_repository_has_a_verifying_log_of_one_event(repo, repo_path):
    assert types(repo) == ["init"]
    rep = open_repo(repo_path).verify_audit_log()
    assert rep.ok and rep.size == 1 and rep.checkpoints == 1


def test_a_missing_log_folder_entirely_is_reported(busy):
    path = busy["path"]
    shutil.rmtree(path / "log")
    rep = busy["repo"].verify_audit_log()
    assert any("rolled back or its log truncated" in e for e in rep.errors), rep.errors


def test_a_backup_of_a_folder_whose_name_is_not_utf8_is_logged(repo, repo_path, tmp_path):
    """Names that are not UTF-8 travel as lone surrogates (surrogateescape) in snapshot paths;
    the snapshot's event must still be written, and read back as the same event."""
    folder = os.path.join(os.fsencode(tmp_path), b"caf\xe9-\xff")
    write(os.path.join(folder, b"inside.txt"), b"inside\n")
    snap = backup(repo, os.fsdecode(folder))
    evs = events(repo)
    assert [(ev["type"], ev.get("snapshot")) for ev in evs] == [("init", None), ("snapshot", snap.id)]
    assert evs[1]["details"]["paths"] == [os.fsdecode(folder)]
    rep = open_repo(repo_path).verify_audit_log()
    assert rep.ok, rep.errors
