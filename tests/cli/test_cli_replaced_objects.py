"""Objects written over a record's name are reported as replaced, never as deleted behind the log.

The attacker holds write access to the storage but not the password: on a local
repository they replace a file; on S3 they PUT without If-None-Match, which a
versioned bucket stores as a new version in front of the original, also over a
name whose original is locked. Then the user runs the commands they would.
"""

from __future__ import annotations

import os

import pytest

from s3.helpers import S3Amber

from cli_helpers import Amber, restored_root, write
from s3server import S3_SERVERS

GARBAGE = b"\x00not an amber record, written by someone without the password\n" * 4
DELETED_BEHIND = "deleted behind the log"


def replaced(key: str) -> str:
    return f"{key}: content does not authenticate — replaced or damaged"


class Attacker:
    """Writes over one stored name the way someone with storage access but no password would."""

    def __init__(self, user) -> None:
        self.user = user

    def write_over(self, key: str, data: bytes = GARBAGE) -> None:
        if isinstance(self.user, S3Amber):  # no If-None-Match: a new version in front of the original
            self.user.s3.put_object(Bucket=self.user.bucket, Key=self.user.key(key), Body=data)
            return
        path = self.user.repo / key
        os.chmod(path, 0o644)
        path.unlink()
        path.write_bytes(data)

    def keys(self, prefix: str) -> list[str]:
        if isinstance(self.user, S3Amber):
            return self.user.keys(prefix)
        root = self.user.repo
        return sorted(str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file())

    def original_version(self, key: str) -> str | None:
        """The version id of the original object under `key` (S3), else None."""
        if not isinstance(self.user, S3Amber):
            return None
        versions = self.user.versions(key)  # newest first, as S3 lists them
        assert len(versions) == 2, versions
        return versions[-1]


@pytest.fixture(params=["local", *S3_SERVERS])
def user(request, tmp_path, in_subprocess):
    """A user with a new repository, on local storage and on an S3 bucket with Object Lock
    (on each S3 server)."""
    if request.param != "local":
        return new_s3_user(tmp_path, request.getfixturevalue(f"{request.param}_server"), in_subprocess)
    u = Amber(tmp_path / "amber", subprocess=in_subprocess)
    u.create()
    return u


@pytest.fixture
def s3_user(tmp_path, s3_server, in_subprocess):
    return new_s3_user(tmp_path, s3_server, in_subprocess)


def new_s3_user(tmp_path, server, in_subprocess) -> S3Amber:
    u = S3Amber(tmp_path / "amber", server, server.new_bucket(object_lock=True), subprocess=in_subprocess)
    u.create()
    return u


@pytest.fixture
def two_backups(user, tmp_path):
    """Two snapshots of a changing folder; the index files each backup wrote."""
    src = tmp_path / "src"
    write(src / "a.txt", b"first\n")
    write(src / "b.bin", os.urandom(70_000))
    attacker = Attacker(user)
    first = user.backup(src)["snapshot_id"]
    index_first = set(attacker.keys("index/"))
    write(src / "c.txt", os.urandom(40_000))
    second = user.backup(src)["snapshot_id"]
    index_second = sorted(set(attacker.keys("index/")) - index_first)
    assert index_second, "the second backup wrote no index file"
    return user, attacker, src, first, second, index_second[0]


def assert_reported_as_replaced(user, attacker, key: str, r) -> None:
    text = r.stderr + r.out
    assert replaced(key) in text, r
    assert DELETED_BEHIND not in text, r
    original = attacker.original_version(key)
    if original is not None:
        assert f"the original version {original} authenticates: a new version was written over it" in text, r


def reads_first_versions(user) -> bool:
    """Whether amber reads every name's first version here: on a server that ignores
    If-None-Match (Ceph RGW, docs/S3.md §4), so a version written over a name is never read."""
    return isinstance(user, S3Amber) and user.server.kind == "rgw"


def assert_never_read(user, tmp_path, *snapshots) -> None:
    """Nothing amber reads has changed: every snapshot is there, whole, and restores."""
    user.run("check", "--read-data")
    user.run("audit", "verify")
    assert [s["id"] for s in user.json("snapshots", quiet=False)] == list(snapshots)
    for sid in snapshots:
        user.run("restore", sid, "--target", tmp_path / f"restored-{sid[:8]}", "--verify")


def test_garbage_over_a_snapshot_is_reported_as_replaced(two_backups, tmp_path):
    user, attacker, src, first, second, _index = two_backups
    key = f"snapshots/{second}"
    attacker.write_over(key)
    if reads_first_versions(user):
        assert_never_read(user, tmp_path, first, second)
        return

    r = user.run("check", expect=20)
    assert_reported_as_replaced(user, attacker, key, r)
    r = user.run("audit", "verify", expect=None)
    assert DELETED_BEHIND not in r.stderr + r.out, r
    # the others are listed (with a warning about the replaced one) and restore
    assert [s["id"] for s in user.json("snapshots", quiet=False)] == [first]
    r = user.run("restore", second, "--target", tmp_path / "no", expect=20)
    assert replaced(key) in r.stderr, r
    target = tmp_path / "restored"
    user.run("restore", first, "--target", target, "--verify")
    assert sorted(os.listdir(restored_root(target, src))) == [b"a.txt", b"b.bin"]


def test_garbage_over_an_index_file_is_reported_as_replaced(two_backups, tmp_path):
    user, attacker, src, first, second, index = two_backups
    attacker.write_over(index)
    if reads_first_versions(user):
        assert_never_read(user, tmp_path, first, second)
        return

    r = user.run("check", expect=20)
    assert_reported_as_replaced(user, attacker, index, r)
    assert [s["id"] for s in user.json("snapshots", quiet=False)] == [first, second]
    target = tmp_path / "restored"
    user.run("restore", first, "--target", target, "--verify")
    assert sorted(os.listdir(restored_root(target, src))) == [b"a.txt", b"b.bin"]


def test_garbage_over_a_lock_record_is_reported_as_replaced(two_backups, tmp_path):
    user, attacker, src, first, second, _index = two_backups
    user.run("lock", first, "--for", "2h")
    (event,) = attacker.keys(f"locks/{first}/")
    attacker.write_over(event)
    if reads_first_versions(user):
        assert_never_read(user, tmp_path, first, second)
        return

    r = user.run("check", expect=20)
    assert_reported_as_replaced(user, attacker, event, r)
    assert [s["id"] for s in user.json("snapshots", quiet=False)] == [first, second]
    target = tmp_path / "restored"
    user.run("restore", first, "--target", target, "--verify")
    assert sorted(os.listdir(restored_root(target, src))) == [b"a.txt", b"b.bin"]


@pytest.mark.parametrize("mode", ["governance", "compliance"])
def test_a_new_version_over_a_locked_snapshot_names_the_original(s3_user, tmp_path, mode):
    """Object Lock protects a version, not a name: the PUT over a locked snapshot is accepted."""
    user = s3_user
    src = tmp_path / "src"
    write(src / "a.txt", b"first\n")
    write(src / "b.bin", os.urandom(70_000))
    first = user.backup(src)["snapshot_id"]
    write(src / "c.txt", b"later\n")
    locked = user.backup(src, args=("--retain", "2h", "--retention-mode", mode))["snapshot_id"]
    key = f"snapshots/{locked}"
    other = user.s3.get_object(Bucket=user.bucket, Key=user.key(f"snapshots/{first}"))["Body"].read()
    Attacker(user).write_over(key)
    Attacker(user).write_over(key, other)  # then another snapshot's genuine bytes

    if reads_first_versions(user):
        assert_never_read(user, tmp_path, first, locked)
        original = user.versions(key)[-1]
        assert user.s3.head_object(Bucket=user.bucket, Key=user.key(key), VersionId=original)["ObjectLockMode"]
        return
    r = user.run("check", expect=20)
    original = user.versions(key)[-1]  # S3 lists the newest first
    assert f"{replaced(key)} (does not match its name); storage keeps 2 older version(s); " in r.stderr, r
    assert f"the original version {original} authenticates: a new version was written over it" in r.stderr, r
    assert DELETED_BEHIND not in r.stderr + r.out, r
    assert [s["id"] for s in user.json("snapshots", quiet=False)] == [first]
    target = tmp_path / "restored"
    user.run("restore", first, "--target", target, "--verify")
    assert sorted(os.listdir(restored_root(target, src))) == [b"a.txt", b"b.bin"]
    # the original is still there and still locked: nothing was lost
    head = user.s3.head_object(Bucket=user.bucket, Key=user.key(key), VersionId=original)
    assert head["ObjectLockMode"] == mode.upper()


def test_what_s3_keeps_under_a_planted_name_is_said_too(s3_user):
    """Garbage at a new name has no original; garbage over garbage has one that fails too."""
    user, attacker = s3_user, Attacker(s3_user)
    fresh, twice = (f"snapshots/{c * 64}" for c in "ab")
    attacker.write_over(fresh)
    attacker.write_over(twice)
    attacker.write_over(twice, GARBAGE + b"again")
    r = user.run("check", expect=20)
    assert f"{replaced(fresh)} (does not match its name); storage keeps no older version of it" in r.stderr, r
    first = user.versions(twice)[-1]
    assert (
        f"{replaced(twice)} (does not match its name); storage keeps 1 older version(s); "
        f"the original version {first} does not authenticate either"
    ) in r.stderr, r
    assert DELETED_BEHIND not in r.stderr + r.out, r
    assert user.json("snapshots", quiet=False) == []
