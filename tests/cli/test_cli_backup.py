"""amber backup: JSON summary, files cache, tags, hosts, excludes, stdin, bad paths, unreadable files."""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from cli_helpers import IS_ROOT, OLD_NS, Amber, iso_to_us, run_on_terminal, set_old_mtimes, write

BACKUP_FIELDS = {
    "snapshot_id": str,
    "files_new": int,
    "files_changed": int,
    "files_unmodified": int,
    "bytes_read": int,
    "bytes_added": int,
    "duration_s": (int, float),
}


def simple_tree(root: Path) -> dict[str, bytes]:
    """Regular files only (no hard links), old mtimes; returns path -> content."""
    files = {
        "a.txt": b"alpha\n",
        "empty": b"",
        "dir/b.bin": os.urandom(300_000),
        "dir/deeper/c.txt": b"gamma " * 1000,
        "d e f/g h.txt": b"spaces\n",
        "ünï/ß.txt": "unicode ✓\n".encode(),
        "rand.bin": os.urandom(2 << 20),
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        write(p, data)
    set_old_mtimes(root)
    return {str(root / rel): data for rel, data in files.items()}


def check_backup_json(doc: dict) -> None:
    for k, t in BACKUP_FIELDS.items():
        assert k in doc, f"backup --json lacks {k}: {doc}"
        assert isinstance(doc[k], t) and not isinstance(doc[k], bool), f"{k} has type {type(doc[k])}: {doc}"
    assert len(doc["snapshot_id"]) == 64 and int(doc["snapshot_id"], 16) >= 0
    assert doc["duration_s"] >= 0


def test_backup_json_summary_and_files_cache(repo, tmp_path):
    src = tmp_path / "src"
    files = simple_tree(src)
    total = sum(len(d) for d in files.values())
    random_bytes = 300_000 + (2 << 20)

    first = repo.backup(src)
    check_backup_json(first)
    assert (first["files_new"], first["files_changed"], first["files_unmodified"]) == (len(files), 0, 0), first
    assert first["bytes_read"] == total, first
    assert first["bytes_added"] >= random_bytes, "random data cannot shrink: bytes_added is too small"
    assert first["bytes_added"] < total * 2 + (1 << 20)

    # every mtime is years old: the second backup reads nothing
    second = repo.backup(src)
    check_backup_json(second)
    assert second["snapshot_id"] != first["snapshot_id"]
    assert (second["files_new"], second["files_changed"], second["files_unmodified"]) == (0, 0, len(files)), second
    assert second["bytes_read"] == 0, second
    assert second["bytes_added"] < 64 << 10, second

    # one file changes (its new mtime old as well), one file is added
    changed = src / "dir" / "deeper" / "c.txt"
    write(changed, b"changed content\n")
    os.utime(changed, ns=(OLD_NS + 5, OLD_NS + 5))
    write(src / "new.txt", b"brand new\n")
    os.utime(src / "new.txt", ns=(OLD_NS + 9, OLD_NS + 9))
    third = repo.backup(src)
    assert (third["files_new"], third["files_changed"], third["files_unmodified"]) == (1, 1, len(files) - 1), third
    assert third["bytes_read"] == len(b"changed content\n") + len(b"brand new\n"), third

    snaps = repo.snapshots()
    assert [s["id"] for s in snaps] == [first["snapshot_id"], second["snapshot_id"], third["snapshot_id"]]
    assert repo.run("cat", "latest", changed).stdout == b"changed content\n"
    assert repo.run("cat", first["snapshot_id"], changed).stdout == files[str(changed)]


def test_files_modified_within_two_seconds_are_read_again(repo, tmp_path):
    src = tmp_path / "src"
    files = simple_tree(src)
    fresh = src / "fresh.txt"
    for _attempt in range(3):
        write(fresh, b"just written\n", mtime_ns=None)  # mtime: now
        first = repo.backup(src)
        started = next(s["time"] for s in repo.snapshots() if s["id"] == first["snapshot_id"])
        if iso_to_us(started) - os.stat(fresh).st_mtime_ns // 1000 < 1_500_000:
            break  # the backup began within 2 s of the write, as this test needs
    else:
        pytest.skip("this machine is too slow to start a backup within 2 s of a write")
    second = repo.backup(src)
    assert second["bytes_read"] == len(b"just written\n"), second  # read again: the cache left it out
    # ... but counted against the parent snapshot, where it is the same file
    assert second["files_unmodified"] == len(files) + 1, second
    assert second["files_new"] + second["files_changed"] == 0, second


def test_tags_and_hosts(repo, tmp_path):
    src = tmp_path / "src"
    simple_tree(src)
    a = repo.backup(src, args=("--tag", "daily", "--tag", "db", "--host", "alpha.example"))["snapshot_id"]
    b = repo.backup(src, args=("--tag", "weekly"))["snapshot_id"]
    c = repo.backup(src, args=("--host", "beta"))["snapshot_id"]
    snaps = {s["id"]: s for s in repo.snapshots()}
    assert set(snaps[a]["tags"]) == {"daily", "db"} and snaps[a]["hostname"] == "alpha.example"
    assert set(snaps[b]["tags"]) == {"weekly"} and snaps[b]["hostname"] == socket.gethostname()
    assert snaps[c]["tags"] == [] and snaps[c]["hostname"] == "beta"

    assert [s["id"] for s in repo.snapshots("--tag", "daily")] == [a]
    assert [s["id"] for s in repo.snapshots("--tag", "weekly")] == [b]
    assert [s["id"] for s in repo.snapshots("--tag", "nope")] == []
    assert [s["id"] for s in repo.snapshots("--host", "alpha.example")] == [a]
    assert [s["id"] for s in repo.snapshots("--host", "beta")] == [c]
    assert [s["id"] for s in repo.snapshots("--host", socket.gethostname())] == [b]
    assert [s["id"] for s in repo.snapshots("--host", "beta", "--tag", "daily")] == []
    human = repo.run("snapshots", "--tag", "daily").out
    assert a[:8] in human and b[:8] not in human and c[:8] not in human


def test_exclude_by_base_name_and_by_full_path(repo, tmp_path):
    src = tmp_path / "src"
    for rel in (
        "keep.txt",
        "a/keep.txt",
        "a/skip.tmp",
        "skip.tmp",
        "a/cache/blob",
        "a/cache/sub/x",
        "b/cache/kept-because-only-a-cache-is-excluded",
        "b/trace.log",
        "a/trace.log",
    ):
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        write(p, rel.encode())
    r = repo.backup(src, args=("--exclude", "*.tmp", "--exclude", str(src / "a" / "cache"), "--exclude", "*/b/*.log"))
    paths = {e["path"] for e in repo.json("ls", r["snapshot_id"])}
    s = str(src)
    for kept in ("keep.txt", "a/keep.txt", "b/cache/kept-because-only-a-cache-is-excluded", "a/trace.log", "a"):
        assert f"{s}/{kept}" in paths, kept
    for gone in ("a/skip.tmp", "skip.tmp", "a/cache", "a/cache/blob", "a/cache/sub/x", "b/trace.log"):
        assert f"{s}/{gone}" not in paths, gone


@pytest.mark.subprocess
def test_stdin_backup_and_cat_back(repo):
    data = os.urandom(3 << 20) + b"tail"
    r = repo.backup(args=("--stdin", "--stdin-name", "dump.sql"), input=data)
    check_backup_json(r)
    assert r["bytes_read"] == len(data)
    entries = [e for e in repo.json("ls", r["snapshot_id"]) if e["type"] == "file"]
    assert len(entries) == 1 and entries[0]["path"].endswith("dump.sql"), entries
    assert entries[0]["size"] == len(data)
    assert repo.run("cat", "latest", entries[0]["path"]).stdout == data
    snap = repo.snapshots()[-1]
    assert any(p.endswith("dump.sql") for p in snap["paths"]), snap

    # empty standard input, default name
    r2 = repo.backup(args=("--stdin",), input=b"")
    files = [e for e in repo.json("ls", r2["snapshot_id"]) if e["type"] == "file"]
    assert len(files) == 1 and files[0]["size"] == 0
    assert repo.run("cat", "latest", files[0]["path"]).stdout == b""


def test_backup_of_a_missing_path_is_an_error_and_makes_no_snapshot(repo, tmp_path):
    missing = tmp_path / "not-here"
    r = repo.run("backup", missing, expect=1)
    assert "not-here" in r.stderr
    present = tmp_path / "here"
    present.mkdir()
    write(present / "f", b"x")
    r = repo.run("backup", present, missing, "--json", expect=1)
    assert "not-here" in r.stderr
    assert repo.snapshots() == []
    assert not list((repo.repo / "snapshots").glob("*")), "a failed backup left a snapshot file"


def test_several_paths_relative_paths_and_single_files(repo, tmp_path):
    work = tmp_path / "work"
    (work / "one").mkdir(parents=True)
    (work / "two").mkdir()
    write(work / "one" / "f1", b"1")
    write(work / "two" / "f2", b"2")
    write(work / "lone.txt", b"lone")
    r = repo.backup("two", "one", "lone.txt", cwd=work)
    snap = repo.snapshots()[0]
    assert snap["id"] == r["snapshot_id"]
    assert sorted(snap["paths"]) == sorted(str(work / n) for n in ("one", "two", "lone.txt"))
    assert all(os.path.isabs(p) for p in snap["paths"])
    paths = {e["path"] for e in repo.json("ls", "latest")}
    assert {str(work / "one" / "f1"), str(work / "two" / "f2"), str(work / "lone.txt")} <= paths
    assert repo.run("cat", "latest", work / "lone.txt").stdout == b"lone"


@pytest.mark.subprocess
def test_human_output_in_a_pipe_has_no_progress(repo, tree):
    r = repo.run("backup", tree["root"])
    assert r.stderr == "", f"nothing but errors may reach stderr in a pipe:\n{r!r}"
    assert r.out.strip()
    r = repo.run("backup", tree["root"])
    assert r.stderr == ""


@pytest.mark.subprocess
def test_json_mode_shows_no_progress_even_on_a_terminal(repo, tree):
    r, tty = run_on_terminal(repo, "backup", tree["root"], "--json")
    assert r.rc == 0, (r, tty)
    r.json()
    assert tty.strip() == b"", f"--json must not draw progress, even on a terminal: {tty[:500]!r}"
    for args in (("check", "--read-data", "--json"), ("restore", "latest", "--target", str(repo.base / "t"), "--json")):
        r, tty = run_on_terminal(repo, *args)
        assert r.rc == 0, (r, tty)
        r.json()
        assert tty.strip() == b"", f"{args}: {tty[:500]!r}"


# -- unreadable source files: exit 3 ------------------------------------------------

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2


def _as_user(uid: int, gid: int):
    def pre():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return pre


def _without_dac_override():
    """Stay uid 0 but lose the right to read what the permission bits forbid."""
    libc = ctypes.CDLL(None, use_errno=True)

    def pre():
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return pre


def _unprivileged(tmp_path):
    """(base folder, preexec_fn, user to own the folder or None, cleanup): a way to run amber
    without the right to read a file whose mode is 0o000."""
    if not IS_ROOT:
        probe = tmp_path / "probe"
        write(probe, b"x", 0o000)
        try:
            with open(probe, "rb"):
                pytest.skip("chmod 000 does not make a file unreadable for this user")
        except PermissionError:
            pass
        return tmp_path / "u", None, None, lambda: None
    probe_amber = Amber(tmp_path / "probe")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        nobody = None
    if nobody is not None:
        pre = _as_user(nobody.pw_uid, nobody.pw_gid)
        try:
            ok = probe_amber.run("--version", preexec_fn=pre, expect=None, cwd="/").rc == 0
        except (OSError, subprocess.SubprocessError):
            ok = False  # e.g. the interpreter lives under a folder only root may enter
        if ok:
            base = Path(tempfile.mkdtemp(prefix="amber-cli-unreadable-"))
            os.chmod(base, 0o755)
            return base, pre, nobody, lambda: shutil.rmtree(base, ignore_errors=True)
    # `nobody` cannot run this interpreter (it may live under /root): drop the capabilities instead
    pre = _without_dac_override()
    try:
        ok = probe_amber.run("--version", preexec_fn=pre, expect=None).rc == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    if not ok:
        pytest.skip("cannot run amber without the right to read every file")
    return tmp_path / "u", pre, None, lambda: None


@pytest.mark.subprocess
def test_unreadable_files_give_exit_3_and_a_snapshot(tmp_path):
    base, pre, owner, cleanup = _unprivileged(tmp_path)
    try:
        amber = Amber(base)
        src = base / "src"
        (src / "sub").mkdir(parents=True)
        write(src / "readable.txt", b"fine\n")
        write(src / "sub" / "also-readable.txt", b"fine too\n")
        write(src / "secret.txt", b"not for you\n")
        (src / "locked-dir").mkdir()
        write(src / "locked-dir" / "inside.txt", b"hidden\n")
        set_old_mtimes(src)
        if owner is not None:  # amber runs as this user: it owns everything but the two secrets
            for dirpath, dirnames, filenames in os.walk(base):
                for n in [dirpath] + [os.path.join(dirpath, x) for x in dirnames + filenames]:
                    os.lchown(n, owner.pw_uid, owner.pw_gid)
            os.chown(src / "secret.txt", 0, 0)
            os.chown(src / "locked-dir", 0, 0)
        os.chmod(src / "secret.txt", 0o000)
        os.chmod(src / "locked-dir", 0o000)

        amber.run("init", preexec_fn=pre)
        r = amber.run("backup", src, "--json", preexec_fn=pre, expect=3)
        doc = r.json()
        sid = doc["snapshot_id"]
        assert str(src / "secret.txt") in r.stderr, r
        assert str(src / "locked-dir") in r.stderr, r
        assert str(src / "readable.txt") not in r.stderr

        h = amber.run("backup", src, preexec_fn=pre, expect=3)
        assert str(src / "secret.txt") in h.stderr, h

        snaps = amber.json("snapshots", preexec_fn=pre)
        assert len(snaps) == 2 and snaps[0]["id"] == sid
        paths = {e["path"] for e in amber.json("ls", sid, preexec_fn=pre)}
        assert str(src / "readable.txt") in paths and str(src / "sub" / "also-readable.txt") in paths
        assert str(src / "secret.txt") not in paths
        assert amber.run("cat", sid, src / "readable.txt", preexec_fn=pre).stdout == b"fine\n"
        amber.run("check", "--read-data", preexec_fn=pre)
    finally:
        if (base / "src" / "locked-dir").exists():
            os.chmod(base / "src" / "locked-dir", 0o700)
        cleanup()
