"""Backups killed half-way and backups run side by side into one repository."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cli_helpers import assert_same_tree, packs, restored_root, set_old_mtimes, write

pytestmark = pytest.mark.subprocess  # signals and processes side by side: real `amber` processes only


def big_tree(root, files: int = 50, size: int = 1 << 20) -> None:
    root.mkdir(parents=True)
    for i in range(files):
        sub = root / f"part-{i % 5}"
        sub.mkdir(exist_ok=True)
        write(sub / f"file-{i:03d}.bin", os.urandom(size))
    set_old_mtimes(root)


def test_killed_backup_leaves_a_usable_repository(repo, tmp_path):
    src = tmp_path / "big"
    big_tree(src)  # ~50 MiB
    p = subprocess.Popen(
        repo.cmd("backup", src),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=repo.env(),
    )
    deadline = time.monotonic() + 60
    try:
        while p.poll() is None and not packs(repo.repo) and time.monotonic() < deadline:
            time.sleep(0.002)
        p.send_signal(signal.SIGKILL)
    finally:
        out, err = p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL, (
        f"the backup ended (exit {p.returncode}) before it could be killed half-way; stderr: {err[-2000:]!r}"
    )
    assert not list((repo.repo / "snapshots").glob("*")), "a killed backup left a snapshot"

    r = repo.run("check")
    assert "Traceback" not in r.stderr
    assert repo.snapshots() == []

    doc = repo.backup(src)
    assert doc["files_new"] + doc["files_changed"] + doc["files_unmodified"] == 50
    target = tmp_path / "restore"
    repo.run("restore", "latest", "--target", target, "--verify")
    assert_same_tree(src, restored_root(target, src))
    repo.run("check", "--read-data")


def test_killed_stdin_backup_waiting_for_input(repo, tmp_path):
    """Killed while it waits for more input, after a pack is on disk: deterministic timing."""
    p = subprocess.Popen(
        repo.cmd("backup", "--stdin", "--stdin-name", "stream"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=repo.env(),
    )
    try:
        deadline = time.monotonic() + 60
        sent = 0
        while not packs(repo.repo) and time.monotonic() < deadline and sent < 200:
            p.stdin.write(os.urandom(1 << 20))
            p.stdin.flush()
            sent += 1
        poll_end = time.monotonic() + 10
        while not packs(repo.repo) and time.monotonic() < poll_end:
            time.sleep(0.01)
        assert packs(repo.repo), "no pack was written after 200 MiB of input"
        assert p.poll() is None
        p.send_signal(signal.SIGKILL)
    finally:
        if p.poll() is None:
            p.kill()
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        err = p.stderr.read()
        p.stdout.read()
        p.wait(timeout=60)
    assert b"Traceback" not in err
    assert p.returncode == -signal.SIGKILL
    repo.run("check")
    repo.run("check", "--read-data")
    assert repo.snapshots() == []
    data = os.urandom(2 << 20)
    repo.backup(args=("--stdin", "--stdin-name", "again"), input=data)
    path = next(e["path"] for e in repo.json("ls", "latest") if e["type"] == "file")
    assert repo.run("cat", "latest", path).stdout == data


def test_concurrent_backups_into_one_repository(repo, tmp_path):
    shared = os.urandom(700 << 10)  # the same content in every tree: deduplication races
    trees = []
    for n in range(3):
        root = tmp_path / f"tree-{n}"
        (root / "sub").mkdir(parents=True)
        for i in range(20):
            write(root / "sub" / f"f{i}.txt", f"tree {n} file {i}\n".encode() * (i + 1))
        write(root / "unique.bin", os.urandom((1 + n) << 20))
        write(root / "shared.bin", shared)
        set_old_mtimes(root)
        trees.append(root)
    procs = [
        subprocess.Popen(
            repo.cmd("backup", t, "--json"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=repo.env(),
        )
        for t in trees
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results):  # noqa: B007
        assert b"Traceback" not in err, err.decode(errors="replace")
        assert p.returncode == 0, err.decode(errors="replace")
    ids = {json.loads(out)["snapshot_id"] for out, _ in results}
    snaps = repo.snapshots()
    assert len(snaps) == 3 and {s["id"] for s in snaps} == ids
    assert sorted(p for s in snaps for p in s["paths"]) == sorted(str(t) for t in trees)
    repo.run("check", "--read-data")
    for s in snaps:
        target = tmp_path / f"restore-{s['id'][:8]}"
        repo.run("restore", s["id"], "--target", target, "--verify")
        assert_same_tree(s["paths"][0], restored_root(target, s["paths"][0]))


def test_killed_restore_leaves_no_partial_file_under_a_final_name(repo, tmp_path):
    """A restore killed at any moment: every file under its final name is whole, nothing else is left."""
    src = tmp_path / "big"
    src.mkdir()
    for i in range(4):  # several blobs each, written over many pwrites
        write(src / f"large-{i}.bin", os.urandom(24 << 20))
    for i in range(300):
        write(src / "small" / f"f{i:03d}.txt", os.urandom(3000 + i))
    set_old_mtimes(src)
    repo.backup(src)
    want = {p.relative_to(src): p.read_bytes() for p in src.rglob("*") if p.is_file()}
    killed_mid_way = 0
    for delay in (0.2, 0.5, 0.9, 1.5):
        target = tmp_path / f"restore-{delay}"
        p = subprocess.Popen(
            repo.cmd("restore", "latest", "--target", target),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=repo.env(),
        )
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        killed_mid_way += p.returncode == -signal.SIGKILL
        root = Path(os.fsdecode(restored_root(target, src)))
        for path in root.rglob("*") if root.exists() else ():
            assert not path.name.startswith(".amber-restore-"), f"a temporary was left: {path}"
            if path.is_file():
                assert path.read_bytes() == want[path.relative_to(root)], f"{path} is partial"
    assert killed_mid_way, "every restore ended before it could be killed"


def _children(pid: int) -> set[int]:
    kids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.add(int(entry))
    return kids


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start_on_small_files(repo, tmp_path, command: str, files: int):
    """Enough small files for worker processes (backed up first for a restore); the command
    started on them in a real process, restoring into tmp_path/out."""
    src = tmp_path / "many"
    for i in range(files):
        write(src / f"d{i % (files // 100):02d}" / f"f{i:04d}.txt", os.urandom(2000 + i))
    set_old_mtimes(src)
    if command == "restore":
        repo.backup(src)
        argv = repo.cmd("restore", "latest", "--target", tmp_path / "out")
    else:
        argv = repo.cmd("backup", src)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=repo.env())
    return src, p


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_worker_processes_end_with_a_killed_command_and_leave_nothing_partial(repo, tmp_path, command):
    """Enough small files for worker processes: kill the command once they run; they end too,
    and a restore leaves no partial file under a final name."""
    src, p = _start_on_small_files(repo, tmp_path, command, 3000)
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while p.poll() is None and len(workers) < 2 and time.monotonic() < deadline:
            workers |= _children(p.pid)
            time.sleep(0.005)
        p.send_signal(signal.SIGKILL)
    finally:
        p.communicate(timeout=60)
    if p.returncode != -signal.SIGKILL or not workers:
        pytest.skip(f"the {command} ended before its worker processes could be seen (exit {p.returncode})")
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "a worker process outlived the killed command"
    if command == "restore":
        root = Path(os.fsdecode(restored_root(tmp_path / "out", src)))
        for path in root.rglob("*") if root.exists() else ():
            assert not path.name.startswith(".amber-restore-"), f"a temporary was left: {path}"
            if path.is_file():
                assert path.read_bytes() == (src / path.relative_to(root)).read_bytes(), f"{path} is partial"


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_a_killed_worker_process_stops_the_command_with_a_message(repo, tmp_path, command):
    """A worker killed under a running command (the out-of-memory killer, an operator):
    never a traceback or a hang; the command either fails naming it or completes whole,
    and the repository is still sound."""
    src, p = _start_on_small_files(repo, tmp_path, command, 6000)
    victim = None
    deadline = time.monotonic() + 60
    try:
        while p.poll() is None and victim is None and time.monotonic() < deadline:
            workers = [k for k in _children(p.pid) if b"spawn_main" in _cmdline(k)]  # not the resource tracker
            victim = min(workers) if len(workers) >= 2 else None
            time.sleep(0.005)
        if victim is not None:
            os.kill(victim, signal.SIGKILL)
    finally:
        _out, raw_err = p.communicate(timeout=120)
    err = raw_err.decode(errors="replace")
    if victim is None:
        pytest.skip(f"the {command} ended before its workers could be seen (exit {p.returncode})")
    assert "Traceback" not in err
    # the worker had batches: they fail, and so does the command, saying why; it had none:
    # the other worker does the rest and the command succeeds whole
    assert p.returncode in (0, 1), err
    if p.returncode == 1:
        assert "worker process ended unexpectedly" in err
    elif command == "restore":
        assert_same_tree(src, restored_root(tmp_path / "out", src))
    else:
        target = tmp_path / "check-out"
        repo.run("restore", "latest", "--target", target, "--verify")
        assert_same_tree(src, restored_root(target, src))
    r = repo.run("check", "--read-data")
    assert "Traceback" not in r.stderr
