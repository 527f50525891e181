"""Signed audit events through the real CLI (docs/AUDIT-LOG.md §4.4): a backup key's forged
admin events are reported by `audit verify` and `check` (exit 20, naming the event), and the
admin's `forget` still refuses what the log holds: nothing is lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from amber.audit import authors
from amber.repository import Repository
from format2 import ADMIN_PASSWORD, BACKUP_PASSWORD, Upgraded, write_with_record

from cli_helpers import Amber, environment
from sources import write


@pytest.fixture
def world(tmp_path, amber_exe, in_subprocess):
    """The admin and a backup host of one repository of format 2, with one snapshot under a
    legal hold; the backup host's `release` of it, forged through the library."""
    admin = Amber(tmp_path / "admin", password=ADMIN_PASSWORD, subprocess=in_subprocess)
    host = Amber(tmp_path / "host", password=BACKUP_PASSWORD, subprocess=in_subprocess)
    host.repo = admin.repo
    with environment(admin.env()):
        admin.backup_id = Upgraded(admin.repo).backup_id
    write(tmp_path / "src" / "a.txt", b"alpha\n")
    admin.sid = host.backup(tmp_path / "src")["snapshot_id"]
    admin.run("hold", admin.sid, "--reason", "litigation")
    admin.run("audit", "verify")
    return admin, host


def _forge_release(host: Amber, sid: str) -> dict:
    """What a stolen backup credential can do with the library, below any command's refusal."""
    with environment(host.env()):
        return write_with_record(Repository.open(str(host.repo), BACKUP_PASSWORD), "release", sid, reason="x")


@pytest.mark.subprocess
def test_a_backup_keys_release_is_reported_and_forget_still_refuses(world):
    admin, host = world
    forged = _forge_release(host, admin.sid)
    assert forged["type"] == "release" and authors.signature_ok(forged, forged_origin(admin))
    what = f"event {forged['seq']} (release of snapshot {admin.sid[:8]}"
    for args in (("audit", "verify"), ("audit", "verify", "--full"), ("check",)):
        r = admin.run(*args, expect=20)
        assert what in r.out + r.stderr and "which may not write it: not honoured" in r.out + r.stderr
    lines = admin.run("audit", "log").out.splitlines()
    made = next(ev["seq"] for ev in admin.json("audit", "log") if ev["type"] == "snapshot")
    assert lines[made].endswith("by backup key " + admin.backup_id[:16])  # the host's snapshot
    assert lines[forged["seq"]].endswith("NOT HONOURED (see `amber audit verify`)")
    r = admin.run("forget", admin.sid, expect=30)
    assert admin.sid[:8] in r.stderr
    assert [s["id"] for s in admin.snapshots()] == [admin.sid]


def forged_origin(u: Amber) -> str:
    with environment(u.env()):
        return Repository.open(str(u.repo), u.password).audit.origin


def test_amber_init_makes_a_log_whose_events_are_signed(amber):
    amber.init()
    with environment(amber.env()):
        repo = Repository.open(str(amber.repo), amber.password)
    if not repo.keys.sealed_content:
        pytest.skip("`amber init` still makes repositories of format 1: their events are not signed")
    first = repo.audit.entries()[0][0]
    assert first["details"]["format"] == 2
    assert first["author"] == first["details"]["admin_key"]
    assert authors.signature_ok(first, repo.audit.origin)
    amber.run("audit", "verify")
    amber.run("check")
    amber.run("audit", "verify")  # the check event, signed by the admin key, verifies too


def test_an_upgraded_repository_signs_from_its_upgrade_on(amber, tmp_path):
    """`amber upgrade` of the repository amber 0.1.0 wrote: the upgrade pins the admin key, and
    every event after it (the old key's revocation, a check) is the admin key's."""
    vectors = Path(__file__).resolve().parents[1] / "vectors"
    # copied as a restore from another machine would be: stored now (the vector's snapshots are
    # dated 2030, so only their storage time tells `check` they are not ones added behind the log)
    shutil.copytree(vectors / "repo-v1", amber.repo, copy_function=shutil.copy)
    amber.password = json.loads((vectors / "repo-v1.json").read_text())["password"]
    r = amber.run("upgrade", expect=None)
    if r.rc == 2 and "No such command" in r.stderr:
        pytest.skip("no `amber upgrade` yet")
    assert r.rc == 0, r
    amber.run("check")
    events = amber.json("audit", "log")
    pin = next(ev for ev in events if ev["type"] == "upgrade")
    assert all(ev.get("author") == pin["details"]["admin_key"] for ev in events[pin["seq"] :]), events
    amber.run("audit", "verify", "--full")
