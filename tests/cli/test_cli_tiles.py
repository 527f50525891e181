"""The tiled audit log through the commands a user runs, on local storage and S3: objects
planted at the next width (bundles and tiles), a tile whose hashes do not match its entries,
a missing tile, a partial tile longer than the tree. Backups, locks and holds go on; `audit
verify --full` and `check` name each object (exit 20); nothing stored is overwritten;
`audit verify` from the remembered checkpoint, and `--full`."""

from __future__ import annotations

import os

import pytest

from amber.audit import merkle
from amber.audit import tiles as t
from amber.crypto.aead import KIND_LOG_TILE
from amber.repository import Repository
from s3.helpers import S3Amber, attacked_user, write_behind

from cli_helpers import environment, write
from s3server import S3_SERVERS

JUNK = b"\x00planted by an attacker without the password\n"


@pytest.fixture(params=["local", *S3_SERVERS])
def user(request, tmp_path, amber_exe):
    """A repository with one snapshot, on local storage or on S3 (Object Lock bucket)."""
    return attacked_user(request, tmp_path)


plant = write_behind  # an object written the way an attacker would: not through amber


def remove(u, key: str) -> None:
    if isinstance(u, S3Amber):
        for v in u.s3.list_object_versions(Bucket=u.bucket, Prefix=u.key(key)).get("Versions", []):
            u.s3.delete_object(Bucket=u.bucket, Key=v["Key"], VersionId=v["VersionId"])
        return
    os.unlink(u.repo / key)


def snapshot_of_log(u) -> dict[str, bytes]:
    """Every object under log/ and its bytes."""
    if isinstance(u, S3Amber):
        return {k: u.s3.get_object(Bucket=u.bucket, Key=u.key(k))["Body"].read() for k in u.keys("log/")}
    root = u.repo
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in (root / "log").rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def library(u) -> Repository:
    with environment(u.env()):
        return Repository.open(u.url, u.password)


def log_size(u) -> int:
    return len(u.json("audit", "log"))


def another_backup(u) -> str:
    write(u.src / "a.txt", os.urandom(16))
    return u.backup(u.src)["snapshot_id"]


def assert_named(u, keys, *cmds) -> None:
    for args in cmds or (("audit", "verify", "--full"), ("check",)):
        r = u.run(*args, expect=20)
        for key in keys:
            assert key in r.stderr + r.out, r
        assert "Traceback" not in r.stderr


def test_junk_at_the_next_bundle_and_tile_width_never_stops_backup_lock_or_hold(user):
    n = log_size(user)
    junk_bundle, junk_tile = t.bundle_of(n + 1).key(), t.tile_block(0, n + 2).key()
    plant(user, junk_bundle, JUNK)
    plant(user, junk_tile, JUNK)
    before = snapshot_of_log(user)
    sid = another_backup(user)
    user.run("lock", sid, "--for", "1d")
    user.run("hold", user.sid, "--reason", "case 7")
    events = user.json("audit", "log")
    assert [e["seq"] for e in events] == list(range(n + 3))
    assert [e["type"] for e in events[n:]] == ["snapshot", "lock", "hold"]
    after = snapshot_of_log(user)
    assert all(after[k] == v for k, v in before.items()), "nothing stored was overwritten"
    assert junk_bundle + ".1" in after
    user.run("audit", "verify")  # from the remembered checkpoint: what this client wrote itself
    assert_named(user, [junk_bundle, junk_tile])
    user.run("audit", "foreign", "--all", "--reason", "planted in a test")
    r = user.run("audit", "verify", "--full")
    assert "known foreign object" in r.stderr, r


def test_an_authentic_tile_that_does_not_match_its_entries_a_missing_tile_and_a_tile_beyond_the_tree(user):
    r = library(user)
    for _ in range(260 - log_size(user)):
        r.log_event("check", read_data=False, ok=True, errors=0)
    n = log_size(user)
    full = t.Place(0, 0, 0, t.WIDTH).key()
    remove(user, full)
    assert_named(user, [full], ("audit", "verify", "--full"))
    wrong = [merkle.leaf_hash(b"not an entry")] * t.WIDTH
    plant(user, full, r.audit.sealer.seal(KIND_LOG_TILE, t.encode_tile(t.Place(0, 0, 0, t.WIDTH), wrong)))
    r2 = user.run("audit", "verify", "--full", expect=20)
    assert full in r2.stderr and "do not match its entries" in r2.stderr, r2
    beyond = t.tile_block(0, n + 40)
    plant(
        user,
        beyond.key(),
        r.audit.sealer.seal(KIND_LOG_TILE, t.encode_tile(beyond, wrong[: beyond.width - beyond.start])),
    )
    another_backup(user)
    assert_named(user, [full, beyond.key()])
    assert [e["type"] for e in user.json("audit", "log")[n:]] == ["snapshot", "check"]


def test_verify_is_incremental_and_full_rereads(user, tmp_path):
    another_backup(user)
    doc = user.json("audit", "verify")
    assert doc["ok"] and doc["remembered_size"] == doc["size"]
    doc = user.json("audit", "verify", "--full")
    assert doc["ok"] and doc["checkpoints"] == doc["size"]
