"""Attacks around the locks, made through storage, then the commands a user runs.

An attacker with the backup host's storage rights (and, where said, the
password) plants objects directly: garbage over an unlocked snapshot
document or index file, so that prune would take its data for unused;
removed lock records; a forged release record; a forged forget event. Each
ends in a named error with the exit code of CLI.md and nothing lost, on a
local folder and on S3 (moto's server, Object Lock bucket).
"""

from __future__ import annotations

import shutil

import pytest

from amber.clock import to_iso
from amber.format import layout
from amber.repo import records as rec
from s3.helpers import S3Amber, write_behind

from cli_helpers import Amber, environment, make_source, restored_root, tree_state
from s3server import S3_SERVERS
from sources import open_repo


def rnd(n: int, seed: str) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


@pytest.fixture(params=["local", *S3_SERVERS])
def user(request, tmp_path, in_subprocess) -> Amber:
    """A user of amber with a new repository on a local folder, or on an Object Lock bucket."""
    if request.param == "local":
        u: Amber = Amber(tmp_path / "amber", subprocess=in_subprocess)
    else:
        server = request.getfixturevalue(f"{request.param}_server")
        u = S3Amber(tmp_path / "amber", server, server.new_bucket(object_lock=True), subprocess=in_subprocess)
    u.create()
    return u


# -- the attacker's hands on storage ----------------------------------------------------------


def keys(user: Amber, prefix: str) -> list[str]:
    if isinstance(user, S3Amber):
        return user.keys(prefix)
    root = user.repo
    base = root / prefix
    if not base.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))


def get(user: Amber, key: str) -> bytes:
    if isinstance(user, S3Amber):
        return user.s3.get_object(Bucket=user.bucket, Key=user.key(key))["Body"].read()
    return (user.repo / key).read_bytes()


put = write_behind  # a replaced file locally, an overwrite on S3


def remove(user: Amber, key: str) -> None:
    """Delete as a writer can: the file locally; on S3 a delete marker (Object Lock allows it)."""
    if isinstance(user, S3Amber):
        user.erase(key)
    else:
        (user.repo / key).unlink()


def strip_local_protection(user: Amber, key: str) -> None:
    """Locally, an object's retention and hold live in `.locks/<key>/`: remove them."""
    if not isinstance(user, S3Amber):
        shutil.rmtree(user.repo / ".locks" / key, ignore_errors=True)


def everything(user: Amber) -> dict[str, list[str]]:
    return {p: keys(user, p) for p in ("snapshots/", "data/", "index/", "locks/")}


def library(user: Amber):
    """The repository opened with the password through amber's library, in the user's environment."""
    return open_repo(user.url, password=user.password)


@pytest.fixture
def two_snapshots(user, tmp_path):
    """Two unlocked snapshots with data of their own: (user, src, [sid1, sid2], [state1, state2])."""
    src = tmp_path / "src"
    make_source(src, {"one.bin": rnd(80_000, "one"), "shared.txt": b"shared\n" * 50})
    s1 = user.backup(src)["snapshot_id"]
    state1 = tree_state(src)
    make_source(src, {"two.bin": rnd(80_000, "two"), "shared.txt": b"shared\n" * 50})
    s2 = user.backup(src)["snapshot_id"]
    user.run("prune")  # clears the run markers: the next prune deletes at once what it finds unused
    return user, src, [s1, s2], [state1, tree_state(src)]


# -- item 2: prune fails safe -----------------------------------------------------------------


@pytest.mark.subprocess
def test_garbage_over_an_unlocked_snapshot_stops_prune(two_snapshots, tmp_path):
    user, src, (s1, s2), (state1, _state2) = two_snapshots
    key = layout.snapshot(s1)
    original = get(user, key)
    put(user, key, b"not a snapshot at all" * 10)
    before = everything(user)
    for args in (("prune",), ("prune", "--dry-run"), ("forget", s2, "--prune"), ("forget", s2, "--prune", "-n")):
        r = user.run(*args, expect=20)
        assert key in r.stderr and "nothing was deleted" in r.stderr, r
    assert everything(user) == before, "a refused prune deleted something"
    listed = user.json("snapshots", quiet=False)  # with a warning naming the unreadable one
    assert [s["id"] for s in listed] == [s2], "forget --prune forgot before it refused"

    put(user, key, original)  # the administrator puts the document back
    user.run("prune")
    target = tmp_path / "restored"
    user.run("restore", s1, "--target", target, "--verify")
    assert tree_state(restored_root(target, src)) == state1
    user.run("check", "--read-data")


def test_garbage_index_file_stops_prune(two_snapshots, tmp_path):
    user, src, (s1, _s2), (state1, _state2) = two_snapshots
    index = keys(user, "index/")
    assert index
    original = get(user, index[0])
    put(user, index[0], b"\x00garbage index" * 20)
    before = everything(user)
    for args in (("prune",), ("prune", "--dry-run")):
        r = user.run(*args, expect=20)
        assert index[0] in r.stderr, r
    assert everything(user) == before

    put(user, index[0], original)
    user.run("prune")
    target = tmp_path / "restored"
    user.run("restore", s1, "--target", target, "--verify")
    assert tree_state(restored_root(target, src)) == state1


def test_a_deleted_index_file_stops_prune(two_snapshots, tmp_path):
    """Without its index file a live pack looks left over by a crash: prune must not delete it."""
    user, src, (s1, _s2), (state1, _state2) = two_snapshots
    index = keys(user, "index/")
    originals = {k: get(user, k) for k in index}
    for k in index:
        remove(user, k)
    before = everything(user)
    for args in (("prune",), ("prune", "--dry-run")):
        r = user.run(*args, expect=20)
        assert "index" in r.stderr and "nothing was deleted" in r.stderr, r
    assert everything(user)["data/"] == before["data/"], "a refused prune deleted a pack"
    for k, data in originals.items():
        put(user, k, data)
    target = tmp_path / "restored"
    user.run("restore", s1, "--target", target, "--verify")
    assert tree_state(restored_root(target, src)) == state1


def test_a_planted_tombstone_naming_live_packs_stops_prune(two_snapshots, tmp_path):
    """A password holder seals a tombstone naming every pack: their index entries are ignored, so
    the packs look unindexed; prune refuses instead of deleting them."""
    user, src, (s1, _s2), (state1, _state2) = two_snapshots
    packs = sorted(layout.last(k) for k in keys(user, "data/"))
    with environment(user.env()):
        repo = library(user)
        doc = {"v": 1, "time": to_iso(repo.clock.now()), "packs": packs}
        name, raw = repo.records.seal(rec.PRUNE, doc)
        repo.close()
    put(user, layout.prune_tomb(name), raw)
    before = everything(user)
    for args in (("prune",), ("prune", "--dry-run")):
        r = user.run(*args, expect=20)
        assert "index" in r.stderr and "nothing was deleted" in r.stderr, r
    assert everything(user)["data/"] == before["data/"], "a planted tombstone made prune delete packs"
    remove(user, layout.prune_tomb(name))
    target = tmp_path / "restored"
    user.run("restore", s1, "--target", target, "--verify")
    assert tree_state(restored_root(target, src)) == state1


def test_garbage_prune_records_stop_prune(two_snapshots):
    user, _src, _sids, _states = two_snapshots
    planted = [layout.prune_plan("0" * 64), layout.prune_tomb("1" * 64), layout.run_marker("2" * 64)]
    for key in planted:
        put(user, key, b"planted garbage")
    before = everything(user)
    r = user.run("prune", expect=20)
    assert all(key in r.stderr for key in planted), r
    assert everything(user) == before


def test_garbage_in_the_log_or_over_a_lock_record_stops_prune(two_snapshots):
    user, _src, (s1, _s2), _states = two_snapshots
    user.run("lock", s1, "--for", "1d")
    entry = layout.log_entry(len(keys(user, "log/entries/")))
    record = keys(user, f"locks/{s1}/")[0]
    put(user, record, b"planted over a lock record")
    before = everything(user)
    for args in (("prune",), ("prune", "--dry-run")):
        r = user.run(*args, expect=20)
        assert record in r.stderr, r
    put(user, entry, b"planted in the log")
    for args in (("prune",), ("prune", "--dry-run")):
        r = user.run(*args, expect=20)
        assert entry in r.stderr, r
    assert everything(user) == before


# -- item 4: the log checked for meaning; forget takes the stricter view -------------------------


@pytest.fixture
def one_snapshot(user, tmp_path):
    src = make_source(tmp_path / "src", {"a.bin": rnd(40_000, "a")})
    return user, user.backup(src)["snapshot_id"], src


def forget_by_policy(user: Amber, src) -> dict:
    """A newer snapshot, then `forget --keep-last 1`: the older one goes unless protected."""
    make_source(src, {"newer.bin": rnd(1000, "newer")})
    user.backup(src)
    return user.json("forget", "--keep-last", "1")


def test_removed_lock_records_do_not_free_a_locked_snapshot(one_snapshot):
    user, sid, src = one_snapshot
    user.run("lock", sid, "--for", "2d")
    records = keys(user, f"locks/{sid}/")
    assert records
    for key in records:
        remove(user, key)
        strip_local_protection(user, key)
    strip_local_protection(user, layout.snapshot(sid))
    assert keys(user, f"locks/{sid}/") == []

    doc = {s["id"]: s for s in user.snapshots()}[sid]
    assert doc["retention"]["mode"] == "governance", "snapshots no longer shows the logged lock"
    r = user.run("forget", sid, expect=30)
    assert sid[:8] in r.stderr and "governance" in r.stderr and "as the audit log records it" in r.stderr
    assert forget_by_policy(user, src)["locked"] == [sid]
    assert sid in {s["id"] for s in user.snapshots()}
    for args in (("check",), ("audit", "verify")):
        r = user.run(*args, expect=20)
        assert f"snapshot {sid[:8]}: the lock of event" in r.stderr and "has no record" in r.stderr, r
    if not isinstance(user, S3Amber):
        assert f"{layout.snapshot(sid)}: storage retention none is shorter" in r.stderr


def test_removed_hold_records_keep_the_hold_until_an_administrator_releases_it(one_snapshot):
    user, sid, _src = one_snapshot
    user.run("hold", sid, "--reason", "case 9")
    for key in keys(user, f"locks/{sid}/"):
        remove(user, key)
        strip_local_protection(user, key)
    # an enforcer that keeps what is held (Ceph RGW: every version of a held record stays, and
    # amber reads the first) makes the removal a no-op: the records themselves still hold it
    removed = not (isinstance(user, S3Amber) and user.server.kind == "rgw")
    assert {s["id"]: s for s in user.snapshots()}[sid]["legal_hold"] is True
    r = user.run("forget", sid, expect=30)
    assert "legal hold" in r.stderr and ("as the audit log records it" in r.stderr or not removed), r
    if removed:
        r = user.run("check", expect=20)
        assert f"snapshot {sid[:8]}: the hold of event" in r.stderr
    user.run("release", sid)  # the hold the log shows can still be lifted, and recorded
    user.run("forget", sid)
    assert user.snapshots() == []


def test_a_forged_release_record_does_not_free_a_held_snapshot(one_snapshot):
    user, sid, src = one_snapshot
    user.run("hold", sid, "--reason", "case 7")
    with environment(user.env()):
        repo = library(user)
        ev = {
            "v": 1,
            "type": "release",
            "snapshot": sid,
            "time": to_iso(repo.clock.now()),
            "host": "backup-host",
            "user": "root",
            "key": repo.key_id[:16],
        }
        name, raw = repo.records.seal(rec.EVENT, ev)
    forged = layout.event(sid, name)
    put(user, forged, raw)

    doc = {s["id"]: s for s in user.snapshots()}[sid]
    assert doc["legal_hold"] is True
    r = user.run("forget", sid, expect=30)
    assert "legal hold" in r.stderr and sid[:8] in r.stderr and "as the audit log records it" in r.stderr
    assert forget_by_policy(user, src)["locked"] == [sid]
    assert sid in {s["id"] for s in user.snapshots()}
    for args in (("check",), ("audit", "verify")):
        r = user.run(*args, expect=20)
        assert f"{forged}: a release of snapshot {sid[:8]} that the audit log does not show" in r.stderr, r


def test_a_forged_forget_event_before_the_lock_ends_is_reported(one_snapshot):
    user, sid, _src = one_snapshot
    user.run("lock", sid, "--for", "3d", "--mode", "compliance")
    with environment(user.env()):
        repo = library(user)
        ev = repo.audit.append("forget", sid, None, bypass_governance=False, protection=None)
    r = user.run("audit", "verify", expect=20)
    assert f"snapshot {sid[:8]} was forgotten (event {ev['seq']}" in r.stderr
    assert "before the end of its compliance lock" in r.stderr
    user.run("check", expect=20)


def test_a_forget_of_a_held_snapshot_without_release_is_reported(one_snapshot):
    user, sid, _src = one_snapshot
    user.run("hold", sid, "--reason", "inquiry")
    with environment(user.env()):
        repo = library(user)
        ev = repo.audit.append("forget", sid, None, bypass_governance=False)
    r = user.run("audit", "verify", expect=20)
    assert f"snapshot {sid[:8]} was forgotten (event {ev['seq']}" in r.stderr and "while held" in r.stderr


def test_an_honest_history_replays_clean(user, tmp_path):
    """Lock, hold, release, bypass, forget and prune as amber does them: no error, one warning."""
    src = make_source(tmp_path / "src", {"a.bin": rnd(30_000, "a")})
    s1 = user.backup(src, args=("--retain", "1d"))["snapshot_id"]
    make_source(src, {"b.bin": rnd(30_000, "b")})
    s2 = user.backup(src)["snapshot_id"]
    user.run("lock", s2, "--for", "2d")
    user.run("hold", s2, "--reason", "review")
    user.run("release", s2)
    user.run("forget", s1, "--bypass-governance")
    user.run("prune")
    r = user.run("audit", "verify")
    assert "bypassing governance" in r.stderr
    user.run("check")


def test_prune_keeps_the_data_of_a_locked_snapshot_deleted_behind_the_log(one_snapshot, tmp_path):
    """The document, its lock records and (locally) every protection in storage are gone: the log
    still says locked, so prune keeps the data, and `check` names what was deleted."""
    user, sid, src = one_snapshot
    state = tree_state(src)
    user.run("lock", sid, "--for", "2d")
    user.run("prune")  # clears the backup's run marker, which would otherwise make prune wait
    key = layout.snapshot(sid)
    original = get(user, key)
    for k in [key, *keys(user, f"locks/{sid}/")]:
        remove(user, k)
    if not isinstance(user, S3Amber):
        shutil.rmtree(user.repo / ".locks")
    before = keys(user, "data/")
    user.run("prune")
    assert keys(user, "data/") == before, "prune deleted the data of a snapshot the log says is locked"
    r = user.run("check", expect=20)
    assert f"snapshot {sid[:8]} (event" in r.stderr and "deleted behind the log" in r.stderr

    put(user, key, original)  # the administrator puts the document back
    target = tmp_path / "restored"
    user.run("restore", sid, "--target", target, "--verify")
    assert tree_state(restored_root(target, src)) == state
