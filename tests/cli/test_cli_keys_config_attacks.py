"""Attacks on key files, the config and the settings, on local and S3 repositories.

Each attack is made directly on storage, as a backup host's attacker would make
it (files written into the repository folder; plain `put_object` calls to the
bucket), sealed with the real keys where the attacker holds the password. Then
the commands a user would run meet it: every one ends in a named message and
the exit code of the CLI contract, and nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import blake3
import pytest

from amber.crypto import keys as keyfile
from amber.crypto.keys import MasterKeys
from amber.format import layout
from amber.repo import records as rec
from amber.repo import settings as settingsrec
from amber.storage.base import COMPLIANCE, Retention
from amber.storage.local import LocalStorage
from s3.helpers import S3Amber, write_behind

from cli_helpers import Amber, environment, write
from s3server import S3_SERVERS
from sources import init_repo, open_repo

NEW = "a new password"
VECTORS = Path(__file__).resolve().parent.parent / "vectors"
UTC = dt.UTC


@pytest.fixture(params=["local", *S3_SERVERS])
def user(request, tmp_path, in_subprocess) -> Amber:
    """A user of amber with no repository yet, on a local folder or an Object Lock bucket."""
    if request.param == "local":
        return Amber(tmp_path / "amber", subprocess=in_subprocess)
    server = request.getfixturevalue(f"{request.param}_server")
    return S3Amber(tmp_path / "amber", server, server.new_bucket(object_lock=True), subprocess=in_subprocess)


def create(user: Amber, **kw) -> None:
    """A repository made cheaply through the library, in the user's environment."""
    with environment(user.env()):
        init_repo(user.url, password=user.password, **kw).close()


def library(user: Amber, password: str | None = None):
    """The repository opened with the real password, as an attacker holding it would."""
    with environment(user.env()):
        return open_repo(user.url, password=password or user.password)


plant = write_behind  # a file replaced locally, an overwrite on S3


def lock_planted(user: Amber, key: str, days: int = 2) -> None:
    """Put a compliance lock on a planted object, as a bucket's default retention would."""
    until = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(days=days)
    if isinstance(user, S3Amber):
        user.s3.put_object_retention(
            Bucket=user.bucket, Key=user.key(key), Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until}
        )
    else:
        LocalStorage(str(user.repo)).set_retention(key, Retention(COMPLIANCE, until))


def source(tmp_path, text: bytes = b"precious\n"):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    write(src / "f.txt", text)
    return src


def restored(user: Amber, tmp_path, src, name: str = "out") -> bytes:
    target = tmp_path / name
    user.run("restore", "latest", "--target", target, "--verify")
    return (target / str(src).lstrip("/") / "f.txt").read_bytes()


# -- 1. planted key files ------------------------------------------------------------------------


def other_keys_file(password: str) -> tuple[str, bytes]:
    """A valid key file wrapping other master keys under the user's password, cheaper than
    amber's own (so it is tried first): (its key, its bytes)."""
    raw = keyfile.wrap(MasterKeys.generate(), password, n=1 << 2)
    return layout.key_file(blake3.blake3(raw).hexdigest()), raw


@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
def test_planted_key_files_never_make_the_repository_unopenable(user, tmp_path, locked):
    create(user)
    src = source(tmp_path)
    user.backup(src)
    garbage = b"not a key file at all\n"
    junk_key = layout.key_file(blake3.blake3(garbage).hexdigest())
    other_key, other_raw = other_keys_file(user.password)
    plant(user, junk_key, garbage)
    plant(user, other_key, other_raw)
    if locked:
        lock_planted(user, junk_key)
        lock_planted(user, other_key)

    r = user.run("snapshots", "--json")
    assert len(r.json()) == 1
    assert junk_key in r.stderr and other_key in r.stderr, r
    write(src / "g.txt", b"a later backup\n")
    user.json("backup", src, quiet=False)
    user.run("lock", "latest", "--for", "1d")
    user.run("hold", "latest", "--reason", "case 7")
    user.run("release", "latest")
    assert restored(user, tmp_path, src) == b"precious\n"
    r = user.run("check", expect=20)
    assert junk_key in r.stderr and other_key in r.stderr, r
    keys = {k["id"] for k in user.json("key", "list", quiet=False)}
    assert layout.last(other_key) in keys
    user.run("snapshots", env=user.env(AMBER_PASSWORD="wrong"), expect=12)


def test_a_password_that_opens_only_a_planted_key_is_refused_naming_it(user, tmp_path):
    create(user)
    other_key, other_raw = other_keys_file("the attacker's password")
    plant(user, other_key, other_raw)
    r = user.run("snapshots", env=user.env(AMBER_PASSWORD="the attacker's password"), expect=12)
    assert other_key in r.stderr and "another repository" in r.stderr, r
    user.run("snapshots")


# -- 2. the config, pinned by the init event -----------------------------------------------------


def replaced_config(user: Amber, how: str) -> bytes:
    if how == "garbage":
        return b"garbage over the config\n"
    r = library(user)  # authentic: sealed with the real keys, but not what init wrote
    return r.records.seal(rec.CONFIG, {**r.sealed_config, "default_retention": None})[1]


@pytest.mark.parametrize("how", ["garbage", "authentic"])
def test_a_replaced_config_stops_every_change_but_not_reading_and_is_repaired(user, tmp_path, how):
    create(user, default_retention={"duration": "2d", "mode": None})
    src = source(tmp_path)
    sid = user.backup(src)["snapshot_id"]
    plant(user, layout.CONFIG, replaced_config(user, how))
    problem = "content does not authenticate" if how == "garbage" else "does not match the config pinned"

    for args in (
        ("backup", src),
        ("lock", sid, "--for", "3d"),
        ("hold", sid, "--reason", "x"),
        ("release", sid),
        ("forget", sid),
        ("prune",),
        ("key", "add"),
        ("settings", "--min-retention", "1d"),
    ):
        r = user.run(*args, env=user.env(AMBER_NEW_PASSWORD=NEW), expect=20)
        assert "config" in r.stderr and problem in r.stderr and "repair config" in r.stderr, r
    for args in (("check",), ("audit", "verify")):
        r = user.run(*args, expect=20)
        assert f"config: {problem}" in r.stderr + r.out, r
    # readers use the pinned config: listing and restoring work, nothing was lost
    snaps = user.json("snapshots", quiet=False)
    assert [s["id"] for s in snaps] == [sid] and snaps[0]["retention"]["mode"] == "governance"
    assert restored(user, tmp_path, src) == b"precious\n"
    assert any(e["path"].endswith("/f.txt") for e in user.json("ls", sid, quiet=False))

    r = user.run("repair", "config")
    assert "put back" in r.out, r
    user.run("repair", "config")  # nothing left to do
    doc = user.backup(src)
    assert user.json("snapshots")[-1]["id"] == doc["snapshot_id"]
    assert user.json("snapshots")[-1]["retention"] is not None, "the pinned default retention applies"
    user.run("check")
    user.run("audit", "verify")
    repairs = [e for e in user.json("audit", "log") if e["type"] == "repair"]
    assert len(repairs) == 1 and repairs[0]["details"]["what"] == "config"


def test_the_init_event_pins_the_config(user):
    create(user)
    first = user.json("audit", "log")[0]
    assert first["type"] == "init"
    d = first["details"]
    assert len(d["config_sha256"]) == 64 and d["config"]["id"] == d["repository"]
    assert d["config"]["default_retention"] is None
    r = user.run("settings")
    assert "pinned" in r.out


# -- 3. settings records and the minimum retention ---------------------------------------------------


def test_a_planted_settings_record_is_ignored_and_reported(user, tmp_path):
    create(user, min_retention="7d")
    src = source(tmp_path)
    user.backup(src)
    r = library(user)  # the attacker seals a record that lowers the minimum, without its event
    raw = r.records.seal(settingsrec.SETTINGS, settingsrec.Settings(1, None, "1s").record())[1]
    planted = layout.settings_record(1)
    plant(user, planted, raw)

    r = user.run("backup", src, "--retain", "1d", expect=30)
    assert "7d" in r.stderr, r
    shown = user.json("settings")
    assert shown["version"] == 0 and shown["min_retention"] == "7d"
    assert any(planted in p for p in shown["problems"]), shown
    r = user.run("check", expect=20)
    assert planted in r.stderr and "not recorded in the audit log" in r.stderr, r

    user.run("settings", "--min-retention", "8d")  # the planted version is skipped, not a blocker
    shown = user.json("settings")
    assert shown["version"] == 2 and shown["min_retention"] == "8d"
    r = user.run("lock", "latest", "--for", "7d", expect=30)
    assert "8d" in r.stderr, r


def test_minimum_retention_is_enforced_and_only_raised(user, tmp_path):
    r = user.run("init", "--min-retention", "1d", "--default-retention", "12h", expect=2)
    assert "minimum" in r.stderr, r
    user.run("init", "--min-retention", "7d")
    src = source(tmp_path)
    for args in (("--retain", "1d"), ("--retain-until", (dt.date.today() + dt.timedelta(days=2)).isoformat())):
        r = user.run("backup", src, *args, expect=30)
        assert "minimum retention of 7d" in r.stderr, r
    assert user.json("snapshots") == []
    user.backup(src)  # no --retain: the minimum, in governance mode
    snap = user.json("snapshots")[-1]
    until = dt.datetime.fromisoformat(snap["retention"]["until"].replace("Z", "+00:00"))
    assert snap["retention"]["mode"] == "governance"
    assert until >= dt.datetime.now(UTC) + dt.timedelta(days=7) - dt.timedelta(minutes=5)
    user.backup(src, args=("--retain", "8d"))

    r = user.run("lock", "latest", "--for", "1d", expect=30)
    assert "minimum retention of 7d" in r.stderr, r
    user.run("lock", "latest", "--for", "9d")
    user.run("settings", "--min-retention", "10d")
    r = user.run("settings", "--min-retention", "8d", expect=30)
    assert "never lowered" in r.stderr, r
    r = user.run("settings", "--default-retention", "9d", expect=2)
    assert "shorter than the minimum" in r.stderr, r
    user.run("settings", "--default-retention", "30d", "--retention-mode", "compliance")
    shown = user.json("settings")
    assert shown["version"] == 2 and shown["min_retention"] == "10d"
    assert shown["default_retention"] == {"duration": "30d", "mode": "compliance"}
    types = [e["type"] for e in user.json("audit", "log")]
    assert types.count("setting") == 2
    user.run("check")


# -- 4. revoked keys ---------------------------------------------------------------------------------


def replant_renamed(user: Amber, raw: bytes) -> str:
    """The same key file stored again under another name (a changed plaintext field)."""
    doc = json.loads(raw)
    doc["host"] = "somewhere-else"
    again = json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"
    key = layout.key_file(blake3.blake3(again).hexdigest())
    plant(user, key, again)
    return key


@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
def test_a_removed_key_is_revoked_even_when_its_file_stays(user, tmp_path, locked):
    create(user)
    src = source(tmp_path)
    user.backup(src, args=("--retain", "2d") if locked else ())
    user.run("key", "add", env=user.env(AMBER_NEW_PASSWORD=NEW))
    new_id = next(k["id"] for k in user.json("key", "list") if not k["current"])
    with environment(user.env()):
        leaked = library(user).storage.get(layout.key_file(new_id))

    r = user.run("key", "remove", new_id[:12])
    assert ("stays until its lock ends" in r.out) == locked, r
    as_new = user.env(AMBER_PASSWORD=NEW)
    r = user.run("snapshots", env=as_new, expect=12)
    if locked:  # still stored: named as revoked
        assert "revoked" in r.stderr and layout.key_file(new_id) in r.stderr, r
        listed = {k["id"]: k for k in user.json("key", "list")}
        assert listed[new_id]["revoked"]
    planted = replant_renamed(user, leaked)
    r = user.run("snapshots", env=as_new, expect=12)
    assert "revoked" in r.stderr and planted in r.stderr, r
    user.run("backup", src, env=as_new, expect=12)
    types = [e["type"] for e in user.json("audit", "log")]
    assert "key-revoke" in types and ("key-remove" in types) != locked
    r = user.run("check", expect=20 if locked else 0)
    assert (planted in r.stderr) == locked, r  # planted without the lock every key file carries
    assert restored(user, tmp_path, src) == b"precious\n"


def test_a_revocation_record_deleted_behind_the_log_is_reported(amber, tmp_path):
    create(amber)
    amber.run("key", "add", env=amber.env(AMBER_NEW_PASSWORD=NEW))
    new_id = next(k["id"] for k in amber.json("key", "list") if not k["current"])
    amber.run("key", "remove", new_id)
    (record,) = [p for p in (amber.repo / "revoked").iterdir() if not p.name.startswith(".")]
    os.chmod(record, 0o644)
    record.unlink()
    r = amber.run("check", expect=20)
    assert f"revoked/{record.name}" in r.stderr and "deleted behind the log" in r.stderr, r


def test_the_key_in_use_is_replaced_only_through_passwd(user, tmp_path):
    create(user)
    src = source(tmp_path)
    user.backup(src)
    current = next(k["id"] for k in user.json("key", "list") if k["current"])
    r = user.run("key", "remove", current, expect=2)
    assert "key passwd" in r.stderr, r

    r = user.run("key", "passwd", env=user.env(AMBER_NEW_PASSWORD=NEW))
    assert current[:10] in r.out, r
    r = user.run("snapshots", expect=12)
    assert "revoked" in r.stderr or "password" in r.stderr.lower(), r
    as_new = user.env(AMBER_PASSWORD=NEW)
    write(src / "g.txt", b"with the new password\n")
    user.run("backup", src, env=as_new)
    user.run("check", env=as_new)
    events = user.json("audit", "log", env=as_new)
    revoke = next(e for e in events if e["type"] == "key-revoke")
    assert revoke["details"]["key"] == current and revoke["details"]["replaced_by"]
    assert [k["current"] for k in user.json("key", "list", env=as_new)] == [True]


def test_garbage_over_the_init_event_does_not_lock_the_repository_up(amber, tmp_path):
    create(amber)
    src = source(tmp_path)
    amber.backup(src)
    plant(amber, layout.log_entry(0), b"garbage over the first log entry\n")
    r = amber.run("snapshots")
    assert "log/entries/000000000000" in r.stderr and "pin cannot be read" in r.stderr, r
    assert restored(amber, tmp_path, src) == b"precious\n"
    r = amber.run("check", expect=20)
    assert "log/entries/000000000000" in r.stderr, r


def test_check_names_a_planted_key_file_an_open_never_reached(user, tmp_path):
    create(user)
    raw = keyfile.wrap(MasterKeys.generate(), user.password, n=1 << 12)  # dearer: tried after the real one
    planted = layout.key_file(blake3.blake3(raw).hexdigest())
    plant(user, planted, raw)
    user.json("snapshots")  # opens with the real key first: nothing to say
    r = user.run("check", expect=20)
    assert planted in r.stderr and "other master keys" in r.stderr, r


def test_a_repository_made_before_the_pin_opens_unpinned(amber):
    shutil.copytree(VECTORS / "repo-v1", amber.repo)
    frozen = Amber(amber.base, password="golden")
    r = frozen.run("check")
    assert "not pinned" in r.stderr, r
    assert frozen.json("settings")["pinned"] is False
    r = frozen.run("repair", "config", expect=20)
    assert "pins no config" in r.stderr, r


def test_a_deleted_config_is_put_back_from_its_pin(amber, tmp_path):
    create(amber)
    src = source(tmp_path)
    amber.backup(src)
    os.chmod(amber.repo / "config", 0o644)
    (amber.repo / "config").unlink()
    r = amber.run("backup", src, expect=20)
    assert "config: missing" in r.stderr, r
    assert restored(amber, tmp_path, src) == b"precious\n"
    amber.run("repair", "config")
    amber.json("backup", src)
    amber.run("check")
