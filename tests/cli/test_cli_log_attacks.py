"""Objects planted in the audit log's namespace, by a writer without the password (or with
only put rights), straight into storage: files in a local repository, boto3 puts on S3.
Backups, locks and holds go on; `audit verify` and `check` name every planted object (exit
20) until an admin marks it with `amber audit foreign`; replaced bytes make it unexplained
again. Overrides (--trust-clock, --bypass-governance) show in the plain `audit log`, and
event times that disagree with the clock are reported."""

from __future__ import annotations

import os
import subprocess

import pytest

from amber.format import layout
from fakeclock import LIBFAKETIME, NO_FAKETIME, moved_clock
from s3.helpers import S3Amber, attacked_user, write_behind

from cli_helpers import write
from s3server import S3_SERVERS

pytestmark = pytest.mark.usefixtures("legacy_log")  # the layout before tiles (test_cli_tiles.py: tiles)

JUNK = b"\x00planted by an attacker without the password\n"


# -- one user per backend, and storage as an attacker reaches it --------------------------------


@pytest.fixture(params=["local", *S3_SERVERS])
def user(request, tmp_path, amber_exe):
    """A repository with one snapshot, on local storage or on S3 (Object Lock bucket)."""
    return attacked_user(request, tmp_path)


plant = write_behind  # an object written the way an attacker would: not through amber


def stored(u, key: str) -> bytes:
    if isinstance(u, S3Amber):
        return u.s3.get_object(Bucket=u.bucket, Key=u.key(key))["Body"].read()
    return (u.repo / key).read_bytes()


def exists(u, key: str) -> bool:
    return key in u.keys("log/") if isinstance(u, S3Amber) else (u.repo / key).is_file()


def log_size(u) -> int:
    return len(u.json("audit", "log"))


def another_backup(u) -> str:
    write(u.src / "a.txt", os.urandom(16))
    return u.backup(u.src)["snapshot_id"]


def assert_contiguous(u) -> list[dict]:
    events = u.json("audit", "log")
    assert [e["seq"] for e in events] == list(range(len(events)))
    return events


def assert_named(u, keys, *cmd) -> None:
    for args in (("audit", "verify"), ("check",)) if not cmd else (cmd,):
        r = u.run(*args, expect=20)
        for key in keys:
            assert key in r.stderr + r.out, r


# -- garbage at the next slot -----------------------------------------------------------------


def test_garbage_at_the_next_slot_never_stops_backup_lock_or_hold(user):
    n = log_size(user)
    junk = layout.log_entry(n)
    plant(user, junk, JUNK)
    assert log_size(user) == n, "junk is no event"
    sid = another_backup(user)
    user.run("lock", sid, "--for", "1d")
    user.run("hold", user.sid, "--reason", "case 7")
    events = assert_contiguous(user)
    assert [e["type"] for e in events[n:]] == ["snapshot", "lock", "hold"]
    assert exists(user, layout.log_entry(n + 1)), "the append skipped the junk"
    assert stored(user, junk) == JUNK, "nothing overwrote the planted object"
    assert sid in {s["id"] for s in user.snapshots()}
    r = user.run("audit", "verify", expect=20)
    assert junk in r.stderr and "does not authenticate" in r.stderr and "audit foreign" in r.stderr, r
    assert_named(user, [junk], "check")


def test_a_marked_object_passes_with_a_warning_until_its_bytes_change(user):
    n = log_size(user)
    junk = layout.log_entry(n)
    plant(user, junk, JUNK)
    another_backup(user)
    listed = user.json("audit", "foreign")
    assert [(f["key"], f["marked_by"]) for f in listed] == [(junk, None)]
    assert listed[0]["size"] == len(JUNK) and len(listed[0]["sha256"]) == 64
    user.run("audit", "foreign", junk, expect=2)  # a reason is required
    user.run("audit", "foreign", "log/entries/nothing-here", "--reason", "x", expect=2)
    r = user.run("audit", "foreign", junk, "--reason", "examined: ransomware test file")
    assert junk in r.out
    events = assert_contiguous(user)
    mark = events[-1]
    assert mark["type"] == "foreign" and mark["details"]["reason"] == "examined: ransomware test file"
    assert mark["details"]["objects"][0]["key"] == junk
    assert "marked foreign (examined: ransomware test file)" in user.run("audit", "log").out
    r = user.run("audit", "verify")
    assert f"known foreign object, marked by event {mark['seq']}" in r.stderr and junk in r.stderr, r
    r = user.run("check")
    assert junk in r.stderr + r.out, r
    assert user.json("audit", "foreign")[0]["marked_by"] == mark["seq"]
    # the attacker puts other bytes there: no longer what the admin examined
    # (on RGW, which ignores If-None-Match and where amber reads the first version, the
    # attacker's overwrite deletes the unlocked junk first: the new bytes are what is read)
    plant(user, junk, JUNK + b"more")
    assert_named(user, [junk])
    another_backup(user)


def test_far_future_junk_does_not_move_the_next_slot(user):
    n = log_size(user)
    far = layout.log_entry(10**12 - 1)
    plant(user, far, JUNK)
    for _ in range(2):
        another_backup(user)
    assert_contiguous(user)
    assert exists(user, layout.log_entry(n)) and exists(user, layout.log_entry(n + 1))
    assert_named(user, [far], "audit", "verify")
    user.run("audit", "foreign", "--all", "--reason", "planted far ahead")
    user.run("audit", "verify")
    another_backup(user)


def test_a_gap_made_by_a_planted_object_is_no_missing_event(user):
    n = log_size(user)
    planted = layout.log_entry(n + 3)
    plant(user, planted, JUNK)
    for _ in range(5):
        another_backup(user)
    events = assert_contiguous(user)
    assert len(events) == n + 5
    assert exists(user, layout.log_entry(n + 4)) and exists(user, layout.log_entry(n + 5))
    r = user.run("audit", "verify", expect=20)
    assert planted in r.stderr and "missing" not in r.stderr, r
    user.run("audit", "foreign", planted, "--reason", "examined")
    user.run("audit", "verify")
    user.run("check")


def test_a_junk_checkpoint_is_foreign_and_never_blocks(user):
    n = log_size(user)
    junk = layout.log_checkpoint(n + 1)
    plant(user, junk, b"not a checkpoint\n")
    another_backup(user)
    another_backup(user)
    assert_contiguous(user)
    assert user.run("audit", "checkpoint").out.startswith("amber/")
    assert_named(user, [junk])
    user.run("audit", "foreign", junk, "--reason", "examined")
    user.run("audit", "verify")


def test_names_that_are_no_slot_under_log_are_foreign(user):
    n = log_size(user)
    keys = [
        "log/entries/not-a-slot",
        "log/entries/123",
        f"{layout.log_entry(n)}/x",  # locally a folder where the next entry would go
        "log/other",
        "log/checkpoints/x",
        "log/entries/not a storage key",  # a name amber itself can neither write nor read
    ]
    for key in keys:
        plant(user, key, JUNK)
    another_backup(user)
    user.run("lock", user.sid, "--for", "1d")
    assert_contiguous(user)
    assert_named(user, keys)
    assert {f["key"] for f in user.json("audit", "foreign")} == set(keys)
    user.run("audit", "foreign", "--all", "--reason", "examined all")
    user.run("audit", "verify")
    user.run("check")
    assert user.run("audit", "foreign", "--all", "--reason", "again").out.strip() == "nothing left to mark"


def test_an_empty_folder_in_the_next_slots_place_is_passed_over(repo, tmp_path):
    """Local storage lists no empty folder; a put at its name still fails, and is retried
    at the next slot."""
    src = tmp_path / "src"
    write(src / "a.txt", b"a\n")
    n = log_size(repo)
    (repo.repo / layout.log_entry(n)).mkdir()
    (repo.repo / layout.log_entry(n + 1)).mkdir()
    repo.backup(src)
    assert_contiguous(repo)
    assert (repo.repo / layout.log_entry(n + 2)).is_file()
    repo.run("audit", "verify")


def test_an_authentic_entry_copied_to_other_slots_is_foreign(user):
    n = log_size(user)
    entry = stored(user, layout.log_entry(1))
    copies = [layout.log_entry(n), layout.log_entry(10**12 - 2)]
    for key in copies:
        plant(user, key, entry)
    assert log_size(user) == n, "a copy is no new event"
    another_backup(user)
    events = assert_contiguous(user)
    assert len(events) == n + 1
    r = user.run("audit", "verify", expect=20)
    for key in copies:
        assert key in r.stderr, r
    assert "a copy of event 1" in r.stderr, r
    user.run("audit", "foreign", *copies, "--reason", "copies")
    user.run("audit", "verify")


def test_a_deleted_entry_is_still_an_error(tmp_path, repo):
    """Deleting a valid entry is no planted object: the log is missing an event."""
    src = tmp_path / "src"
    write(src / "a.txt", b"a\n")
    repo.backup(src)
    repo.run("hold", "latest", "--reason", "x")
    os.unlink(repo.repo / layout.log_entry(1))
    r = repo.run("audit", "verify", expect=20)
    assert layout.log_entry(1) in r.stderr and "missing" in r.stderr, r
    write(src / "a.txt", b"b\n")
    r = repo.run("backup", src, expect=20)
    assert "missing" in r.stderr, r


def test_an_entry_replaced_in_place_is_named_for_what_it_is(tmp_path, repo):
    src = tmp_path / "src"
    write(src / "a.txt", b"a\n")
    repo.backup(src)
    repo.run("hold", "latest", "--reason", "x")
    key = layout.log_entry(1)
    plant(repo, key, JUNK)
    r = repo.run("audit", "verify", expect=20)
    assert f"{key}: content does not authenticate" in r.stderr and "missing" in r.stderr, r


# -- overrides and clocks, as a user reads the log ----------------------------------------------


def test_overrides_are_visible_in_the_plain_audit_log(repo, tmp_path):
    src = tmp_path / "src"
    write(src / "a.txt", b"a\n")
    sid = repo.backup(src)["snapshot_id"]
    repo.run("lock", sid, "--for", "2d")
    repo.run("lock", sid, "--for", "1d", "--bypass-governance")
    repo.run("forget", sid, "--bypass-governance", "--trust-clock")
    lines = repo.run("audit", "log").out.splitlines()
    lock_line = next(line for line in lines if " lock " in line and "[--bypass-governance]" in line)
    assert "[--trust-clock]" not in lock_line
    forget_line = next(line for line in lines if " forget " in line)
    assert "[--bypass-governance]" in forget_line and "[--trust-clock]" in forget_line, lines
    first_lock = next(line for line in lines if " lock " in line)
    assert "[--" not in first_lock, lines


@pytest.mark.subprocess
@pytest.mark.skipif(LIBFAKETIME is None, reason=NO_FAKETIME)
def test_events_from_a_clock_moved_ahead_are_reported(repo, tmp_path):
    src = tmp_path / "src"
    write(src / "a.txt", b"a\n")
    p = subprocess.run(repo.cmd("backup", src), env=moved_clock(repo.env(), "+8d"), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    write(src / "a.txt", b"b\n")
    repo.backup(src)
    r = repo.run("audit", "verify")
    assert "event 1 (snapshot) is dated" in r.stderr and "after this clock's" in r.stderr, r
    assert "event 2 (snapshot) is dated" in r.stderr and "before event 1" in r.stderr, r
