"""Honest summaries and ransomware alarms: every backup with a parent is compared with it.

Counts (new / changed / unmodified) come from the parent snapshot, not from the files cache.
A tree encrypted in place raises an alarm: the snapshot is saved, the backup exits 4, an
`anomaly` event is written and the parent is held (unless --no-auto-hold); ordinary edits do
not. docs/ANOMALIES.md documents the signals these tests pin.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cli_helpers import Amber, write

pytestmark = pytest.mark.subprocess

BACKUP_PASSWORD = "the backup host's password"


def text(i: int) -> bytes:
    """Compressible content, different per file."""
    return b"".join(b"line %d of file %d: the quick brown fox jumps over the lazy dog\n" % (n, i) for n in range(300))


def make_files(root: Path, n: int = 40, prefix: str = "doc", now: bool = False) -> Path:
    """`now`: files as if written this instant (an mtime ahead of the clock keeps every one of them
    inside the files cache's two-second window on any machine, however slow)."""
    for i in range(n):
        write(
            root / f"{'sub/' if i % 2 else ''}{prefix}{i}.txt",
            text(i),
            mtime_ns=time.time_ns() + 3600 * 10**9 if now else 1_600_000_000 * 10**9 + i,
        )
    return root


def encrypt(path: Path, rename_to: str | None = None) -> None:
    """What ransomware does to one file: AES-GCM in place, maybe a new extension."""
    data = path.read_bytes()
    nonce = os.urandom(12)
    path.write_bytes(nonce + AESGCM(bytes(32)).encrypt(nonce, data, None))
    if rename_to:
        path.rename(str(path) + rename_to)


def files_of(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def user(tmp_path) -> Amber:
    u = Amber(tmp_path / "user", subprocess=True)
    u.create()
    return u


def events(u: Amber, kind: str) -> list[dict]:
    return [ev for ev in u.json("audit", "log") if ev["type"] == kind]


def legal_hold(u: Amber, sid: str) -> bool:
    return next(s for s in u.snapshots() if s["id"] == sid)["legal_hold"]


def test_a_second_backup_right_after_the_first_counts_every_file_unmodified(user, tmp_path):
    src = make_files(tmp_path / "src", 30, now=True)  # freshly written: the files cache leaves them out
    first = user.backup(src)
    assert (first["files_new"], first["files_changed"], first["files_unmodified"]) == (30, 0, 0)
    assert first["anomalies"] is None  # no parent: nothing to compare with
    second = user.backup(src)
    assert (second["files_new"], second["files_changed"], second["files_unmodified"]) == (0, 0, 30)
    assert second["bytes_read"] > 0  # the fresh files were read again all the same (the cache's safety)
    with open(src / "doc0.txt", "ab") as f:
        f.write(b"one more line\n")
    write(src / "added.txt", b"a new file\n", mtime_ns=time.time_ns() + 3600 * 10**9)
    third = user.backup(src)
    assert (third["files_new"], third["files_changed"], third["files_unmodified"]) == (1, 1, 29)
    r = user.run("backup", src)
    assert "Files: 0 new, 0 changed, 31 unmodified" in r.out, r


def test_a_tree_encrypted_in_place_raises_the_alarm_and_holds_the_parent(user, tmp_path):
    src = make_files(tmp_path / "src")
    parent = user.backup(src)["snapshot_id"]
    for p in files_of(src):
        encrypt(p)
    r = user.run("backup", "--json", src, expect=4)
    out = r.json()
    a = out["anomalies"]
    assert a["alarm"] is True and a["held"] == parent and a["parent"] == parent, a
    assert a["signals"]["changed"] == 1.0 and a["signals"]["collapsed"] > 0.9, a
    assert any("stopped compressing" in why for why in a["reasons"]), a
    assert "anomaly alarm" in r.stderr and parent[:8] in r.stderr, r
    sid = out["snapshot_id"]
    assert sid in [s["id"] for s in user.snapshots()]  # the backup is saved all the same
    (ev,) = events(user, "anomaly")
    assert ev["snapshot"] == sid and ev["details"]["parent"] == parent and ev["details"]["held"] == parent
    assert ev["details"]["reasons"] == a["reasons"] and ev["details"]["signals"] == a["signals"]
    (hold,) = events(user, "hold")
    assert hold["snapshot"] == parent and "anomaly alarm" in hold["details"]["reason"], hold
    assert legal_hold(user, parent) is True and legal_hold(user, sid) is False
    r = user.run("forget", parent, expect=30)
    assert parent[:8] in r.stderr, r
    listed = user.json("anomalies")
    assert [(x["snapshot"], x["parent"], x["held"]) for x in listed] == [(sid, parent, parent)]
    assert listed[0]["reasons"] == a["reasons"] and listed[0]["time"]
    r = user.run("anomalies")
    assert sid[:8] in r.out and f"parent {parent[:8]} held" in r.out, r


def test_no_auto_hold_leaves_the_parent_unheld(user, tmp_path):
    src = make_files(tmp_path / "src")
    parent = user.backup(src)["snapshot_id"]
    for p in files_of(src):
        encrypt(p, ".crypt")
    write(src / "HOW_TO_RECOVER_FILES.txt", b"pay up\n")
    a = user.json("backup", src, "--no-auto-hold", expect=4, quiet=False)["anomalies"]
    assert a["alarm"] is True and a["held"] is None, a
    assert a["signals"]["files_renamed"] == 40 and a["signals"]["ransom_notes"] == 1, a
    assert a["signals"]["files_deleted"] == 0 and a["signals"]["files_added"] == 1, a  # renames are not both
    assert legal_hold(user, parent) is False
    assert events(user, "hold") == []
    (ev,) = events(user, "anomaly")
    assert ev["details"]["held"] is None


def test_ordinary_edits_do_not_alarm(user, tmp_path):
    src = make_files(tmp_path / "src")
    user.backup(src)
    for i in range(0, 10, 2):  # edit, add and delete a handful of files, and rename one
        with open(src / f"doc{i}.txt", "ab") as f:
            f.write(b"an edit\n")
    for i in range(3):
        write(src / f"new{i}.md", text(100 + i))
    (src / "sub" / "doc1.txt").unlink()
    (src / "doc2.txt").rename(src / "doc2.rst")
    out = user.json("backup", src)
    a = out["anomalies"]
    assert a["alarm"] is False and a["reasons"] == [] and a["held"] is None, a
    assert a["signals"]["files_changed"] == 4 and a["signals"]["files_deleted"] == 1, a
    assert (out["files_new"], out["files_changed"], out["files_unmodified"]) == (4, 4, 34)
    assert events(user, "anomaly") == []


def test_a_ransom_note_alone_raises_the_alarm(user, tmp_path):
    src = make_files(tmp_path / "src")
    user.backup(src)
    write(src / "sub" / "readme_to_decrypt.html", b"<p>pay</p>\n")
    a = user.json("backup", src, expect=4, quiet=False)["anomalies"]
    assert a["signals"]["ransom_notes"] == 1 and len(a["reasons"]) == 1 and "ransom note" in a["reasons"][0], a


def test_mass_renames_to_a_new_extension_alone_raise_the_alarm(user, tmp_path):
    src = make_files(tmp_path / "src")
    user.backup(src)
    for p in files_of(src)[:25]:
        p.rename(p.with_suffix(".wncry"))
    a = user.json("backup", src, expect=4, quiet=False)["anomalies"]
    assert a["signals"]["files_renamed"] == 25 and a["signals"]["collapsed"] == 0, a
    assert len(a["reasons"]) == 1 and ".wncry" in a["reasons"][0], a


def test_renames_to_an_extension_the_parent_had_and_few_files_do_not_alarm(user, tmp_path):
    src = make_files(tmp_path / "src")
    write(src / "notes.md", b"notes\n")
    user.backup(src)
    for p in files_of(src)[:25]:
        if p.suffix == ".txt":
            p.rename(p.with_suffix(".md"))  # the parent had .md files: an ordinary rename
    a = user.json("backup", src)["anomalies"]
    assert a["alarm"] is False and a["signals"]["files_renamed"] == 0, a
    small = make_files(tmp_path / "small", 10)  # fewer files than min-files: too small to judge
    user.backup(small)
    for p in files_of(small):
        encrypt(p)
    a = user.json("backup", small)["anomalies"]
    assert a["alarm"] is False and a["signals"]["collapsed"] == 1.0, a


def test_thresholds_are_a_versioned_audited_setting(user, tmp_path):
    shown = user.json("settings")["anomaly_thresholds"]
    assert shown["min_files"] == 20 and shown["collapsed"] == 0.5 and shown["ransom_notes"] == 1
    user.run("settings", "--anomaly-thresholds", "collapsed=0,changed=90%,min-files=5")
    shown = user.json("settings")["anomaly_thresholds"]
    assert (shown["collapsed"], shown["changed"], shown["min_files"], shown["renamed"]) == (0, 0.9, 5, 0.1)
    (ev,) = events(user, "setting")
    assert ev["details"]["anomaly_thresholds"] == {**shown}, ev
    r = user.run("settings", "--anomaly-thresholds", "collapsed=2", expect=2)
    assert "collapsed" in r.stderr, r
    r = user.run("settings", "--anomaly-thresholds", "entropy=0.5", expect=2)
    assert "entropy" in r.stderr, r
    src = make_files(tmp_path / "src", 10)
    user.backup(src)
    for p in files_of(src):
        encrypt(p)
    a = user.json("backup", src, expect=4, quiet=False)["anomalies"]  # collapse is off; all 10 files changed (>= 5)
    assert a["alarm"] is True and len(a["reasons"]) == 1 and "changed content" in a["reasons"][0], a
    # a later change of another setting keeps the thresholds
    user.run("settings", "--min-retention", "1d")
    assert user.json("settings")["anomaly_thresholds"]["collapsed"] == 0


def write_only_host(admin: Amber, base: Path) -> Amber:
    admin.run("key", "add", "--role", "backup", env=admin.env(AMBER_NEW_PASSWORD=BACKUP_PASSWORD))
    host = Amber(base, password=BACKUP_PASSWORD, subprocess=True)
    host.repo, host.url = admin.repo, admin.url
    return host


def test_a_write_only_key_compares_with_its_files_cache_and_holds_the_parent(user, tmp_path):
    host = write_only_host(user, tmp_path / "host")
    src = make_files(tmp_path / "src")
    host.backup(src)
    again = host.backup(src)
    assert again["anomalies"]["alarm"] is False and again["files_unmodified"] == 40, again
    parent = again["snapshot_id"]
    for p in files_of(src)[:30]:
        encrypt(p, ".locked")
    r = host.run("backup", "--json", src, expect=4)
    a = r.json()["anomalies"]
    assert a["alarm"] is True and a["held"] == parent, a
    assert a["signals"]["files_renamed"] == 30 and a["signals"]["collapsed"] > 0.9, a
    assert legal_hold(user, parent) is True
    (ev,) = events(user, "anomaly")
    assert ev["details"]["held"] == parent
    host.run("release", parent, expect=13)  # only an administrator lifts it
    r = user.run("audit", "verify")  # the backup key's anomaly event is honoured
    assert "not honoured" not in r.out + r.stderr, r
    assert [x["snapshot"] for x in user.json("anomalies")] == [ev["snapshot"]]


def test_a_write_only_key_without_a_files_cache_says_what_it_could_not_measure(user, tmp_path):
    src = make_files(tmp_path / "src")
    user.backup(src)  # the parent, made by the administrator on another machine
    host = write_only_host(user, tmp_path / "host")
    for p in files_of(src):
        encrypt(p)
    a = host.json("backup", src)["anomalies"]
    assert a["alarm"] is False and a["signals"] == {"ransom_notes": 0} and a["unmeasured"], a
    assert "write-only" in a["unmeasured"][0], a
    write(src / "sub" / "HOW_TO_DECRYPT.txt", b"pay\n")  # a note is seen all the same
    host2 = write_only_host(user, tmp_path / "host2")  # another machine: no files cache either
    a = host2.json("backup", src, expect=4, quiet=False)["anomalies"]
    assert a["alarm"] is True and a["signals"] == {"ransom_notes": 1} and "ransom note" in a["reasons"][0], a


def test_a_folder_deleted_whole_counts_its_files_as_deleted(user, tmp_path):
    src = make_files(tmp_path / "src")
    user.backup(src)
    for p in sorted((src / "sub").iterdir()):
        p.unlink()
    (src / "sub").rmdir()  # half the files, in one folder
    out = user.json("backup", src, expect=4, quiet=False)
    a = out["anomalies"]
    assert a["signals"]["files_deleted"] == 20 and a["signals"]["deleted"] == 0.5, a
    assert len(a["reasons"]) == 1 and "deleted" in a["reasons"][0], a
    assert (out["files_new"], out["files_changed"], out["files_unmodified"]) == (0, 0, 20)
