"""Retention locks and legal holds of amber snapshots, as S3 Object Lock on the bucket itself.

Every assertion about protection reads the objects with a plain boto3 client:
what counts is what the server will enforce, not what amber believes.
"""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from .helpers import UTC, iso, retention_of
from cli_helpers import set_old_mtimes, write

S3_MODE = {"governance": "GOVERNANCE", "compliance": "COMPLIANCE"}


def small_tree(root, seed: bytes = b"") -> None:
    """A few files, one larger than a chunk, so a snapshot needs a data pack and a tree pack."""
    root.mkdir(parents=True)
    (root / "sub").mkdir()
    write(root / "a.txt", b"alpha\n" + seed)
    write(root / "sub" / "b.bin", bytes(range(256)) * 8192 + seed)  # 2 MiB
    write(root / "sub" / "c.txt", b"gamma\n" + seed)
    set_old_mtimes(root)


def locked_snapshot(user, tmp_path, mode: str, retain: str = "2h"):
    """A repository with an unlocked snapshot and a locked one that reuses all of its data."""
    src = tmp_path / "src"
    small_tree(src)
    first = user.backup(src)["snapshot_id"]
    packs_before = set(user.keys("data/"))
    doc = user.backup(src, args=("--retain", retain, "--retention-mode", mode))
    # every file and the whole `src` subtree come from the first backup's packs, so all of those
    # packs are needed by the locked snapshot; at most a small tree pack is new (the folders above
    # `src`, such as /tmp, may have changed in between)
    assert doc["files_unmodified"] == 3 and doc["bytes_added"] < 64 << 10, doc
    assert packs_before <= set(user.keys("data/"))
    snap = next(s for s in user.snapshots() if s["id"] == doc["snapshot_id"])
    assert snap["retention"]["mode"] == mode
    return first, snap


def assert_locked(user, key: str, mode: str, until: dt.datetime) -> None:
    m, u = retention_of(user.head(key))
    assert m == S3_MODE[mode], f"{key}: ObjectLockMode {m!r}, expected {S3_MODE[mode]}"
    assert u is not None and u >= until, f"{key}: retained until {u}, shorter than the snapshot's {until}"


def assert_delete_refused(user, key: str) -> None:
    versions = user.versions(key)
    assert versions, f"{key}: no version listed"
    for vid in versions:
        with pytest.raises(ClientError) as e:
            user.s3.delete_object(Bucket=user.bucket, Key=user.key(key), VersionId=vid)
        assert e.value.response["Error"]["Code"] == "AccessDenied", e.value.response
    assert user.versions(key) == versions, f"{key}: a version went away"


@pytest.mark.parametrize("mode", ["governance", "compliance"])
def test_a_locked_snapshot_locks_its_objects_on_the_server(s3repo, tmp_path, mode):
    _, snap = locked_snapshot(s3repo, tmp_path, mode)
    until = iso(snap["retention"]["until"])
    assert until > dt.datetime.now(UTC) + dt.timedelta(minutes=110)
    sid = snap["id"]
    # the snapshot document was locked on its PUT; every pack it needs (all of them here, all
    # written by the earlier unlocked backup) was extended to reach the snapshot's lock
    needed = [f"snapshots/{sid}", "config", *s3repo.keys("keys/"), *s3repo.keys("data/"), *s3repo.keys("index/")]
    assert len(s3repo.keys("data/")) >= 2
    for key in needed:
        assert_locked(s3repo, key, mode, until)
    # the server refuses to delete a locked version, whoever asks
    for key in (f"snapshots/{sid}", s3repo.keys("data/")[0]):
        assert_delete_refused(s3repo, key)
    s3repo.run("check")


def test_new_data_of_a_locked_backup_is_locked_on_its_put(s3repo, tmp_path):
    src = tmp_path / "src"
    small_tree(src)
    doc = s3repo.backup(src, args=("--retain", "1d", "--retention-mode", "compliance"))
    until = iso(s3repo.snapshots()[0]["retention"]["until"])
    for key in [f"snapshots/{doc['snapshot_id']}", *s3repo.keys("data/"), *s3repo.keys("index/")]:
        assert_locked(s3repo, key, "compliance", until)
        # one version only: the lock came with the object, not by rewriting it
        assert len(s3repo.versions(key)) == 1


def test_default_retention_of_the_repository(s3amber, tmp_path):
    s3amber.run("init", "--default-retention", "1h", "--retention-mode", "compliance")
    src = tmp_path / "src"
    small_tree(src)
    s3amber.backup(src)
    snap = s3amber.snapshots()[0]
    assert snap["retention"]["mode"] == "compliance"
    until = iso(snap["retention"]["until"])
    assert dt.timedelta(minutes=55) < until - dt.datetime.now(UTC) <= dt.timedelta(hours=1, seconds=5)
    for key in [f"snapshots/{snap['id']}", *s3amber.keys("data/")]:
        assert_locked(s3amber, key, "compliance", until)


def test_forget_of_a_locked_snapshot_exits_30(s3repo, tmp_path):
    # compliance here; governance without --bypass-governance in the test of deletes below
    first, snap = locked_snapshot(s3repo, tmp_path, "compliance")
    r = s3repo.run("forget", snap["id"], expect=30)
    assert snap["id"][:8] in r.stderr and snap["retention"]["until"][:16] in r.stderr.replace(" ", "T"), r
    assert {s["id"] for s in s3repo.snapshots()} == {first, snap["id"]}
    assert s3repo.keys("snapshots/") == sorted(f"snapshots/{i}" for i in (first, snap["id"]))
    # the unlocked snapshot can go; its data stays, the locked snapshot needs it
    s3repo.run("forget", first, "--prune")
    assert [s["id"] for s in s3repo.snapshots()] == [snap["id"]]
    s3repo.run("check", "--read-data")


def test_shorter_compliance_lock_exits_30_and_the_server_keeps_the_retention(s3repo, tmp_path):
    _, snap = locked_snapshot(s3repo, tmp_path, "compliance", retain="3h")
    sid = snap["id"]
    keys = [f"snapshots/{sid}", *s3repo.keys("data/"), *s3repo.keys("index/"), "config"]
    before = {k: retention_of(s3repo.head(k)) for k in keys}
    attempts = [
        ("--for", "1h"),
        ("--for", "1h", "--bypass-governance"),
        ("--for", "4h", "--mode", "governance"),
        ("--until", (dt.datetime.now(UTC) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")),
    ]
    for args in attempts:
        r = s3repo.run("lock", sid, *args, expect=30)
        assert "compliance" in r.stderr, r
        after = {k: retention_of(s3repo.head(k)) for k in keys}
        assert after == before, f"`lock {' '.join(args)}` changed retention on the server"
    assert s3repo.snapshots()[-1]["retention"]["until"] == snap["retention"]["until"]

    # extending works and reaches every object
    s3repo.run("lock", sid, "--for", "5h")
    snap2 = next(s for s in s3repo.snapshots() if s["id"] == sid)
    until2 = iso(snap2["retention"]["until"])
    assert until2 > iso(snap["retention"]["until"]) + dt.timedelta(hours=1)
    for k in keys:
        assert_locked(s3repo, k, "compliance", until2)
    s3repo.run("check")


def test_hold_reaches_every_object_and_release_clears_it(s3repo, tmp_path):
    src = tmp_path / "src"
    small_tree(src)
    sid = s3repo.backup(src)["snapshot_id"]
    s3repo.run("hold", sid, "--reason", "litigation 2031-17")
    assert s3repo.snapshots()[0]["legal_hold"] is True
    needed = [
        f"snapshots/{sid}",
        "config",
        *s3repo.keys("keys/"),
        *s3repo.keys("data/"),
        *s3repo.keys("index/"),
        *s3repo.keys(f"locks/{sid}/"),
    ]
    assert s3repo.keys("data/") and s3repo.keys("index/") and s3repo.keys("keys/")
    for key in needed:
        assert s3repo.head(key).get("ObjectLockLegalHoldStatus") == "ON", f"{key}: no legal hold on the server"
    assert_delete_refused(s3repo, s3repo.keys("data/")[0])
    assert_delete_refused(s3repo, f"snapshots/{sid}")
    r = s3repo.run("forget", sid, expect=30)
    assert "hold" in r.stderr, r
    s3repo.run("check")

    s3repo.run("release", sid)
    assert s3repo.snapshots()[0]["legal_hold"] is False
    for key in needed:
        assert s3repo.head(key).get("ObjectLockLegalHoldStatus") in (None, "OFF"), f"{key}: still held"
    s3repo.run("forget", sid)
    assert s3repo.snapshots() == []
    types = [e["type"] for e in s3repo.json("audit", "log")]
    assert types.count("hold") == 1 and types.count("release") == 1 and types.count("forget") == 1
    s3repo.run("audit", "verify")


def test_release_keeps_the_hold_of_data_another_held_snapshot_needs(s3repo, tmp_path):
    src = tmp_path / "src"
    small_tree(src)
    a = s3repo.backup(src)["snapshot_id"]
    write(src / "extra.txt", b"only in the second snapshot\n")
    b = s3repo.backup(src)["snapshot_id"]
    s3repo.run("hold", a, "--reason", "case A")
    s3repo.run("hold", b, "--reason", "case B")
    s3repo.run("release", a)
    # b still needs the config, the keys and every data pack of a (it reuses all of a's file data)
    for key in [f"snapshots/{b}", "config", *s3repo.keys("keys/")]:
        assert s3repo.head(key).get("ObjectLockLegalHoldStatus") == "ON", f"{key}: hold of {b[:8]} lost"
    assert s3repo.head(f"snapshots/{a}").get("ObjectLockLegalHoldStatus") in (None, "OFF")
    s3repo.run("check")


def test_deletes_remove_every_version_and_leave_no_delete_marker(s3repo, tmp_path):
    src = tmp_path / "src"
    small_tree(src)
    kept = s3repo.backup(src)["snapshot_id"]
    gov_src = tmp_path / "governance-only"
    small_tree(gov_src, seed=b"data only the governance snapshot has")
    gone = s3repo.backup(gov_src, args=("--retain", "2h", "--retention-mode", "governance"))["snapshot_id"]
    r = s3repo.run("forget", gone, expect=30)
    assert "governance" in r.stderr and "--bypass-governance" in r.stderr, r
    s3repo.run("forget", gone, "--bypass-governance")
    listing = s3repo.s3.list_object_versions(Bucket=s3repo.bucket, Prefix=s3repo.key(f"snapshots/{gone}"))
    assert not listing.get("Versions") and not listing.get("DeleteMarkers"), (
        f"forget left versions or delete markers behind: {listing.get('Versions')} {listing.get('DeleteMarkers')}"
    )
    assert [s["id"] for s in s3repo.snapshots()] == [kept]
    types = [e for e in s3repo.json("audit", "log") if e["type"] == "forget"]
    assert len(types) == 1 and types[0]["snapshot"] == gone

    # data nobody needs, unlocked: prune deletes it, every version of it
    extra = tmp_path / "unlocked-extra"
    small_tree(extra, seed=b"data only this snapshot has")
    before = set(s3repo.keys("data/"))
    tmp = s3repo.backup(extra)["snapshot_id"]
    only_tmp = sorted(set(s3repo.keys("data/")) - before)
    assert only_tmp
    s3repo.run("forget", tmp, "--prune")
    for key in only_tmp:
        listing = s3repo.s3.list_object_versions(Bucket=s3repo.bucket, Prefix=s3repo.key(key))
        assert not listing.get("Versions") and not listing.get("DeleteMarkers"), f"{key}: left behind by prune"
    s3repo.run("check", "--read-data")


def test_upgrading_a_governance_lock_to_compliance_reaches_every_object(s3repo, tmp_path):
    # The test server accepts a governance -> compliance change without the bypass header;
    # AWS S3, MinIO and Ceph RGW ask for it (see docs/S3.md, known limitations), so this
    # shows what amber asks for, not that those servers grant it.
    _, snap = locked_snapshot(s3repo, tmp_path, "governance", retain="2h")
    s3repo.run("lock", snap["id"], "--for", "3h", "--mode", "compliance")
    now = next(s for s in s3repo.snapshots() if s["id"] == snap["id"])
    assert now["retention"]["mode"] == "compliance"
    until = iso(now["retention"]["until"])
    for key in [
        f"snapshots/{snap['id']}",
        "config",
        *s3repo.keys("keys/"),
        *s3repo.keys("data/"),
        *s3repo.keys("index/"),
    ]:
        assert_locked(s3repo, key, "compliance", until)
    s3repo.run("lock", snap["id"], "--for", "4h", "--mode", "governance", expect=30)
    s3repo.run("forget", snap["id"], "--bypass-governance", expect=30)
    s3repo.run("check")


def test_adding_a_key_to_a_locked_and_held_repository_keeps_check_green(s3repo, tmp_path):
    _, snap = locked_snapshot(s3repo, tmp_path, "compliance")
    s3repo.run("hold", snap["id"], "--reason", "audit 7")
    s3repo.run("check")
    old_keys = s3repo.keys("keys/")
    s3repo.run("key", "add", env=s3repo.env(AMBER_NEW_PASSWORD="a second password"))
    assert len(s3repo.keys("keys/")) == len(old_keys) + 1
    for key in old_keys:
        assert_locked(s3repo, key, "compliance", iso(snap["retention"]["until"]))
    s3repo.run("snapshots", env=s3repo.env(AMBER_PASSWORD="a second password"))
    # a new password is a normal operation: the repository must still check clean
    s3repo.run("check")


def test_retention_on_a_bucket_without_object_lock_is_refused_cleanly(s3_server, tmp_path):
    from .helpers import S3Amber

    user = S3Amber(tmp_path / "amber", s3_server, s3_server.new_bucket(object_lock=False))
    user.init()
    src = tmp_path / "src"
    small_tree(src)
    r = user.run("backup", src, "--retain", "1h", "--retention-mode", "compliance", expect=None)
    assert r.rc not in (0, 3), f"a lock the bucket cannot keep was promised:\n{r!r}"
    assert "Object Lock" in r.stderr, r
    assert user.keys("snapshots/") == [], "a refused locked backup left a snapshot"
    sid = user.backup(src)["snapshot_id"]
    user.run("lock", sid, "--for", "1h", expect=None)
    assert user.snapshots()[0]["retention"] is None
    user.run("check")


def test_hold_on_a_bucket_without_object_lock_is_refused_and_records_nothing(s3_server, tmp_path):
    from .helpers import S3Amber

    user = S3Amber(tmp_path / "amber", s3_server, s3_server.new_bucket(object_lock=False))
    user.init()
    src = tmp_path / "src"
    small_tree(src)
    sid = user.backup(src)["snapshot_id"]
    r = user.run("hold", sid, "--reason", "case 12", expect=None)
    assert r.rc != 0, f"a hold the bucket cannot keep was accepted:\n{r!r}"
    # a refused hold must leave no trace that claims the snapshot is held
    assert user.snapshots()[0]["legal_hold"] is False, f"the refused hold is reported as in force:\n{r!r}"
    assert user.keys(f"locks/{sid}/") == [], "the refused hold left a hold event"
    user.run("check")
    assert "Object Lock" in r.stderr, f"the message does not say what the bucket lacks:\n{r!r}"
    user.run("forget", sid)
