"""A backup interrupted half-way (Ctrl-C or SIGKILL) is resumed by the next one, and its run
marker does not block prune: real `amber` processes, killed as a user or the system would."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cli_helpers import assert_same_tree, restored_root, set_old_mtimes, write

pytestmark = pytest.mark.subprocess

MIB = 1 << 20


def random_tree(root: Path, mib: int) -> int:
    """`mib` files of 1 MiB of random bytes (nothing compresses or deduplicates); their size."""
    for i in range(mib):
        write(root / f"part-{i % 8}" / f"file-{i:04d}.bin", os.urandom(MIB))
    set_old_mtimes(root)
    return mib * MIB


def stored_bytes(repo) -> int:
    data = Path(repo.repo) / "data"
    total = 0
    for sub in data.iterdir() if data.is_dir() else ():
        for p in sub.iterdir():
            if not p.name.startswith("."):
                try:
                    total += p.stat().st_size
                except FileNotFoundError:
                    pass
    return total


def interrupt_at(repo, src: Path, sig: int, threshold: int, measure=stored_bytes) -> int:
    """Start `amber backup src`, send `sig` once `measure(repo)` reaches `threshold` bytes, wait
    for it to end; returns the bytes stored then."""
    p = subprocess.Popen(
        repo.cmd("backup", src),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=repo.env(),
    )
    deadline = time.monotonic() + 240
    try:
        while p.poll() is None and measure(repo) < threshold and time.monotonic() < deadline:
            time.sleep(0.005)
        p.send_signal(sig)
    finally:
        _out, err = p.communicate(timeout=120)
    assert p.returncode != 0, f"the backup ended before it was interrupted: {err[-2000:]!r}"
    assert "Traceback" not in err.decode(errors="replace")
    return measure(repo)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_a_backup_interrupted_half_way_is_resumed(repo, tmp_path, sig):
    src = tmp_path / "src"
    total = random_tree(src, 128)
    interrupt_at(repo, src, sig, total // 2)
    assert repo.snapshots() == []

    r = repo.json("check", expect=0, quiet=False)
    assert r["ok"] and r["packs_unindexed"] > 0 and r["bytes_unindexed"] >= r["packs_unindexed"] * 16 * MIB

    again = repo.backup(src)
    assert again["bytes_added"] <= total - r["bytes_unindexed"] + 2 * MIB, (
        f"resumed backup stored {again['bytes_added']} of {total} bytes, {r['bytes_unindexed']} were left"
    )
    assert again["packs_resumed"] == r["packs_unindexed"] and again["bytes_resumed"] == r["bytes_unindexed"]
    after = repo.json("check", "--read-data")
    assert after["ok"] and after["packs_unindexed"] == 0
    target = tmp_path / "restore"
    repo.run("restore", "latest", "--target", target, "--verify")
    assert_same_tree(src, restored_root(target, src))


def test_prune_right_after_a_killed_backup_is_not_blocked(repo, tmp_path):
    src = tmp_path / "src"
    total = random_tree(src, 64)
    interrupt_at(repo, src, signal.SIGKILL, total // 2)
    assert list((Path(repo.repo) / "running").iterdir()), "the killed backup left no run marker"
    doc = repo.json("prune")
    assert doc["waiting_for_runs"] == [], "a dead backup's run marker blocked prune"
    assert doc["packs_deleted"], "the killed backup's unindexed packs were not collected"
    assert not list((Path(repo.repo) / "running").iterdir()), "the dead run's marker was kept"
    assert repo.json("check")["packs_unindexed"] == 0


def test_a_live_backup_of_another_host_still_blocks_prune(repo, tmp_path):
    """A marker of a run on another host cannot be told dead: prune waits for it (24 h)."""
    src = tmp_path / "src"
    write(src / "a.bin", os.urandom(1000))
    repo.backup(src)
    repo.json("forget", "latest")
    script = (
        "import os, sys\n"
        "from amber.repository import Repository\n"
        "from amber.repo import records as rec\n"
        "from amber.format import layout\n"
        "from amber.clock import to_iso\n"
        "r = Repository.open(os.environ['AMBER_REPOSITORY'], os.environ['AMBER_PASSWORD'])\n"
        "doc = {'v': 1, 'time': to_iso(r.clock.now()), 'host': 'another-host', 'pid': 4242,"
        " 'boot_id': 'b', 'machine_id': 'm', 'pidns': 1}\n"
        "print(r.records.put(rec.PRUNE, doc, layout.run_marker))\n"
    )
    import sys

    rid = subprocess.run(
        [sys.executable, "-c", script], env=repo.env(), check=True, capture_output=True, text=True
    ).stdout.strip()
    doc = repo.json("prune")
    assert rid in doc["waiting_for_runs"] and doc["packs_deleted"] == []
