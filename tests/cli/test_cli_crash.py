"""Backups killed half-way and backups run side by side into one repository."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

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
