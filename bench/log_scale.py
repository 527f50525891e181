#!/usr/bin/env python3
"""How the tiled audit log scales: appends, proofs and verification at 10^3 … 10^6 events.

    PYTHONPATH=src python bench/log_scale.py --events 1000 100000 [--dir /tmp/logbench] > table.md

For each size a local repository is made and grown by appending real events through
amber's log code (`TiledStore.append` and `AuditLog.write_checkpoint_at`, exactly what
`AuditLog.append` writes: the bundle block, the tile blocks, the checkpoint) — the
fast path only keeps the head in memory between appends instead of re-reading it.
Then, on that repository:

- append: 20 appends through `Repository.log_event` by a client that remembers the
  last checkpoint; storage requests under log/ per append (gets, stats, listings) and
  CPU time per append (process time);
- inclusion proof for a random event: a fresh reader finds the head, builds the proof
  from tiles and verifies it; wall time and requests;
- `AuditLog.verify()` from a remembered checkpoint 1,000 events old (the log's
  integrity: consistency proof and the new entries), and `Repository.verify_audit_log()`
  (what `amber audit verify` runs: that, then the checks of every event's meaning, from the
  fold of every event the client kept when it verified 1,000 events ago, and with none kept);
- full verify (`AuditLog.verify(full=True)`, every object under log/): events/s
  (`--only-full` builds the logs and measures this alone: wall and CPU time, best of three);
- `amber backup` of an unchanged small tree (the CLI, median of 3) on this repository and
  on one with an empty log; and the same backup in-process (median of 5), which leaves
  out the interpreter's start.
Prints a Markdown table. Timings are one run on whatever machine runs it.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amber.audit import merkle, tiles
from amber.audit.entry import parse_entry
from amber.check import MEANING_FILE
from amber.format import layout
from amber.format.canonical import utf8_json
from amber.repo import client_state
from amber.repository import Repository
from amber.retention.replay import Meaning, save_meaning
from amber.storage.base import StorageWrapper

PASSWORD = "bench password 1234"
KDF_N = 1 << 10


class Counting(StorageWrapper):
    """Counts the storage requests made under log/."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.count = 0

    def _note(self, key: str) -> None:
        if key.startswith("log/") or key == "":
            self.count += 1

    def get(self, key, offset=0, length=None):
        self._note(key)
        return self.inner.get(key, offset, length)

    def stat(self, key):
        self._note(key)
        return self.inner.stat(key)

    def list(self, prefix=""):
        self._note(prefix)
        return self.inner.list(prefix)

    def put(self, key, data, *, retention=None):
        return self.inner.put(key, data, retention=retention)


def counted(path: str) -> tuple[Repository, Counting]:
    repo = Repository.open(path, PASSWORD)
    wrapped = Counting(repo.storage)
    repo.storage = repo.audit.storage = repo.records.storage = wrapped
    return repo, wrapped


def grow(path: str, target: int) -> float:
    """Append events until the log holds `target`; returns the seconds it took."""
    repo = Repository.open(path, PASSWORD)
    log = repo.audit
    store = log.store()
    head = store.head()
    t0 = time.perf_counter()
    kinds = ("check", "restore", "lock", "hold")
    actor = {"host": "bench", "user": "bench", "key": repo.key_id[:16]}
    while head.size < target:
        if head.size % 1000 == 0:  # a fresh store: its caches stay small
            store = log.store()
            store.frontiers[head.size] = head.frontier
        kind = kinds[head.size % len(kinds)]
        ev = {
            "v": 1,
            "seq": head.size,
            "time": "2026-12-01T12:00:00Z",
            "type": kind,
            "actor": actor,
            "details": {"n": head.size, "ok": True, "reason": "benchmark event"},
        }
        new = store.append(head, utf8_json(ev), None)
        if new is None:
            raise SystemExit("another writer appended during the benchmark")
        log.write_checkpoint_at(new.size, new.root)
        head = new
    return time.perf_counter() - t0


def appends(path: str, n: int = 20) -> tuple[float, int, float, int]:
    """(mean requests, max requests, mean CPU ms) of `n` real appends by a client that has
    appended before, and the requests of the first append of a new client (it folds every
    event once into its kept summary, audit/summary.py)."""
    repo, counter = counted(path)
    repo.log_event("check", read_data=False, ok=True, errors=0)
    first = counter.count
    reads = []
    c0 = time.process_time()
    for _ in range(n):
        before = counter.count
        repo.log_event("check", read_data=False, ok=True, errors=0)
        reads.append(counter.count - before)
    cpu = (time.process_time() - c0) / n * 1000
    return statistics.mean(reads), max(reads), cpu, first


def inclusion(path: str) -> tuple[float, int]:
    """(ms, requests) to prove and verify one random event from tiles."""
    repo, counter = counted(path)
    t0 = time.perf_counter()
    store = repo.audit.store()
    head = store.head()
    i = random.Random(7).randrange(head.size)
    raw = store.entries(i, i + 1, head.size)[0]
    proof = store.inclusion(i, head.size)
    merkle.verify_inclusion(merkle.leaf_hash(raw), i, head.size, proof, head.root)
    return (time.perf_counter() - t0) * 1000, counter.count


def remember_back(repo: Repository, back: int) -> int:
    """Make the client's remembered checkpoint the one `back` events before the head."""
    size = repo.audit.store().head().size - back
    note = repo.storage.get(layout.log_checkpoint(size))
    with open(repo.audit.state_path(), "wb") as f:
        f.write(note)
    return size


def keep_fold_back(repo: Repository, size: int) -> None:
    """Make the client's kept fold of every event (check.MEANING_FILE) the one of the first
    `size` events: what it kept when it last ran `audit verify`, at that size."""
    store = repo.audit.store()
    head = store.head()
    m = Meaning()
    for i, raw in enumerate(store.entries(0, size, head.size)):
        m.add(parse_entry(raw, i, f"event {i}"))
    m.size, m.root = size, tiles.frontier_root(store.frontier(size))
    save_meaning(os.path.join(client_state.cache_dir(repo.audit.repository_id), MEANING_FILE), m)


def verify_since(path: str, back: int = 1000) -> tuple[float, int, float, float]:
    """(s, requests) of AuditLog.verify from a checkpoint `back` events old, and the s of
    Repository.verify_audit_log (the command's work: the log, then the events' meaning) from
    there, with the fold the client kept `back` events ago and with none (every event read)."""
    repo, counter = counted(path)
    size = remember_back(repo, back)
    t0 = time.perf_counter()
    rep = repo.audit.verify(remember=False)
    took = time.perf_counter() - t0
    assert rep.ok, rep.errors[:3]
    reads = counter.count
    keep_fold_back(repo, size)
    t0 = time.perf_counter()
    rep = repo.verify_audit_log(remember=False)
    command = time.perf_counter() - t0
    assert rep.ok, rep.errors[:3]
    os.unlink(os.path.join(client_state.cache_dir(repo.audit.repository_id), MEANING_FILE))
    repo = Repository.open(path, PASSWORD)  # a new process: nothing kept in memory either
    remember_back(repo, back)
    t0 = time.perf_counter()
    rep = repo.verify_audit_log(remember=False)
    cold = time.perf_counter() - t0
    assert rep.ok, rep.errors[:3]
    return took, reads, command, cold


def full_verify(path: str) -> tuple[float, float]:
    """(s, events/s) of AuditLog.verify(full=True)."""
    took, _cpu, size, _worker = full_verify_times(path)
    return took, size / took


def full_verify_times(path: str) -> tuple[float, float, int, float]:
    """(wall s, CPU s of this process, events, CPU s of the worker that signs the notes it
    compares the checkpoints with) of AuditLog.verify(full=True)."""
    repo = Repository.open(path, PASSWORD)
    t0, c0, k0 = time.perf_counter(), time.process_time(), os.times()
    rep = repo.audit.verify(full=True, remember=False)
    took, cpu, k1 = time.perf_counter() - t0, time.process_time() - c0, os.times()
    assert rep.ok, rep.errors[:3]
    return took, cpu, rep.size, k1.children_user + k1.children_system - k0.children_user - k0.children_system


def only_full(sizes: list[int], base: Path, keep: bool) -> None:
    """Grow each log and time its full verify alone (best of three: the machine may be shared)."""
    print("| events | build (s) | full verify: wall s (events/s) | CPU s (events/s) | its worker's CPU s |")
    print("|---|---|---|---|---|")
    for n in sizes:
        path = str(base / f"log-{n}")
        if not (keep and os.path.isdir(path)):
            Repository.init(path, PASSWORD, kdf_n=KDF_N)
        build = grow(path, n)
        runs = [full_verify_times(path) for _ in range(3)]
        took, cpu, worker = min(r[0] for r in runs), min(r[1] for r in runs), min(r[3] for r in runs)
        print(
            f"| {n:,} | {build:.0f} | {took:.1f} ({n / took:,.0f}) | {cpu:.1f} ({n / cpu:,.0f}) | {worker:.1f} |",
            flush=True,
        )
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def cli_backup(path: str, src: Path, home: Path) -> float:
    """Median wall seconds of `amber backup` of an unchanged tree (after one first backup)."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},  # imports cost the same
        "AMBER_REPOSITORY": path,
        "AMBER_PASSWORD": PASSWORD,
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_STATE_HOME": str(home / "state"),
    }
    amber = [os.path.join(os.path.dirname(sys.executable), "amber")]
    subprocess.run([*amber, "backup", str(src)], env=env, check=True, capture_output=True)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([*amber, "backup", str(src)], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def library_backup(path: str, src: Path) -> float:
    """Median wall seconds of opening the repository and backing up the unchanged tree in this
    process (no interpreter start): the log's share of a backup, without the noise around it."""
    Repository.open(path, PASSWORD).backup([str(src)])
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        Repository.open(path, PASSWORD).backup([str(src)])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def small_tree(root: Path) -> Path:
    src = root / "src"
    for i in range(50):
        p = src / f"d{i % 5}" / f"f{i}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(2000))
        os.utime(p, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    return src


def s3_requests(events: int, back: int) -> None:
    """Requests per append and per verify on S3 (moto's server on loopback, tests/s3server.py):
    every storage call is one request, a listing one per 1,000 keys."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from s3server import CREDENTIALS, S3Server

    server = S3Server().start()
    try:
        os.environ.update(CREDENTIALS)
        os.environ["AMBER_S3_ENDPOINT"] = server.endpoint
        url = f"s3:{server.new_bucket()}/repo"
        Repository.init(url, PASSWORD, kdf_n=KDF_N)
        t0 = time.perf_counter()
        grow(url, events)
        build = time.perf_counter() - t0
        mean_r, max_r, _cpu, _first = appends(url)
        repo, counter = counted(url)
        remember_back(repo, back)
        assert repo.audit.verify(remember=False).ok
        since = counter.count
        repo, counter = counted(url)
        assert repo.audit.verify(full=True, remember=False).ok
        full = counter.count
        print(f"\nS3 (moto on loopback), {events:,} events (built in {build:.0f} s):\n")
        print(
            f"| requests per append: mean / max | `verify` from a checkpoint {back:,} events back | `verify --full` |"
        )
        print("|---|---|---|")
        print(f"| {mean_r:.1f} / {max_r} | {since} | {full:,} |", flush=True)
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, nargs="*", default=[1000, 100_000])
    ap.add_argument("--dir", default=None)
    ap.add_argument("--full-max", type=int, default=10**6, help="run the full verify only up to this many events")
    ap.add_argument("--keep", action="store_true", help="keep each log built (in --dir), and grow a kept one on")
    ap.add_argument("--s3", type=int, default=0, help="also count requests on S3 (moto) with a log of this many events")
    ap.add_argument("--only-full", action="store_true", help="build each log and time its full verify only")
    a = ap.parse_args()
    base = Path(a.dir or tempfile.mkdtemp(prefix="logbench-"))
    os.environ["XDG_STATE_HOME"] = str(base / "state")
    os.environ["XDG_CACHE_HOME"] = str(base / "cache")
    if a.only_full:
        only_full(a.events, base, a.keep)
        return
    src = small_tree(base)
    empty = str(base / "empty")
    Repository.init(empty, PASSWORD, kdf_n=KDF_N)
    empty_backup = cli_backup(empty, src, base / "home-empty")
    empty_lib = library_backup(empty, src)
    print(
        "| events | build (s) | append: requests mean / max (a new client's first) | append CPU (ms) "
        "| inclusion proof (ms / requests) "
        "| verify from 1,000 back (s / requests) | `audit verify` work from 1,000 back (s): kept fold / none "
        "| full verify (s, events/s) | `amber backup` unchanged (s): this log / empty log "
        "| library backup unchanged (s): this log / empty log |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in a.events:
        path = str(base / f"log-{n}")
        if not (a.keep and os.path.isdir(path)):
            Repository.init(path, PASSWORD, kdf_n=KDF_N)
        build = grow(path, n)  # from where a kept log stopped
        mean_r, max_r, cpu, first_r = appends(path)
        proof_ms, proof_r = inclusion(path)
        since_s, since_r, command_s, cold_s = verify_since(path)
        full_s, rate = full_verify(path) if n <= a.full_max else (float("nan"), float("nan"))
        backup_s = cli_backup(path, src, base / f"home-{n}")
        lib_s = library_backup(path, src)
        print(
            f"| {n:,} | {build:.0f} | {mean_r:.1f} / {max_r} ({first_r}) | {cpu:.1f} | {proof_ms:.1f} / {proof_r} "
            f"| {since_s:.2f} / {since_r} | {command_s:.2f} / {cold_s:.1f} | {full_s:.1f}, {rate:,.0f} "
            f"| {backup_s:.2f} / {empty_backup:.2f} | {lib_s:.3f} / {empty_lib:.3f} |",
            flush=True,
        )
        if not a.keep:
            shutil.rmtree(path, ignore_errors=True)
    if a.s3:
        s3_requests(a.s3, min(1000, a.s3 // 2))


if __name__ == "__main__":
    main()
