"""Where a command's peak memory goes, per structure, measured with tracemalloc.

    PYTHONPATH=src python3 bench/profile_memory.py -- -r REPO backup TREE
    PYTHONPATH=src python3 bench/profile_memory.py -- -r REPO restore latest --target DIR

Runs amber's CLI in this process with tracemalloc on. A sampler thread keeps
the snapshot taken when the traced total was highest (a new one whenever the
total grows by STEP), and the allocations live at that peak are grouped by
the first frame in amber's code that made them, then mapped to a structure
(index, files cache, tree nodes waiting, files in flight, decoded trees,
restore plan). Traced bytes are Python's own allocations, below the RSS
/usr/bin/time reports (interpreter, libraries, allocator slack).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import tracemalloc

STEP = 1.10  # a new snapshot when the traced total grows by 10 %
FRAMES = 12

# (file suffix, function or "" for any) -> structure; first match along the stack, innermost first
STRUCTURES = [
    ("repo/blobs.py", "_add_index_file", "index (loaded index files)"),
    ("repo/blobs.py", "_write_pack", "index (entries of packs written)"),
    ("repo/blobs.py", "_append", "packs being filled (entries, sealed blobs)"),
    ("crypto/aead.py", "", "packs being filled (entries, sealed blobs)"),
    ("repo/blobindex.py", "", "index (compact)"),
    ("backup/filescache.py", "", "files cache"),
    ("backup/archiver.py", "_finish_file", "files cache (new entries) / finished file nodes"),
    ("backup/archiver.py", "_scan_dir", "per-file records in flight (nodes, stats, pending files)"),
    ("backup/archiver.py", "_file_node", "per-file records in flight (nodes, stats, pending files)"),
    ("backup/archiver.py", "_meta", "per-file records in flight (nodes, stats, pending files)"),
    ("backup/archiver.py", "_submit", "per-file records in flight (nodes, stats, pending files)"),
    ("backup/archiver.py", "", "pending tree nodes (folders waiting)"),
    ("repo/trees.py", "load_tree", "decoded trees (cache)"),
    ("format/tree.py", "", "decoded trees (cache)"),
    ("format/pack.py", "", "index (blob ids decoded from index files)"),
    ("restore/restorer.py", "", "restore plan"),
    ("restore/jobs.py", "", "restore plan"),
    ("restore/placement.py", "", "restore plan"),
    ("repo/snapshots.py", "", "snapshots"),
    ("repo/records.py", "", "index (blob ids decoded from index files)"),
    ("concurrent/futures/", "", "futures and results in flight"),
    ("multiprocessing/connection.py", "", "per-file records in flight (results of worker processes, sealed chunks)"),
    ("backup/", "", "backup, other"),
]


def classify(tb) -> str:
    for frame in reversed(tb):  # innermost first (a Traceback lists the oldest frame first)
        for suffix, func, name in STRUCTURES:
            here = frame.filename.endswith(suffix) or (suffix.endswith("/") and suffix in frame.filename)
            if here and (not func or _func_of(frame) == func):
                return name
    return "other (interpreter, imports, libraries)"


_FUNCS: dict[tuple[str, int], str] = {}


def _func_of(frame) -> str:
    """The function a frame's line belongs to (tracemalloc records only file and line)."""
    key = (frame.filename, frame.lineno)
    if key not in _FUNCS:
        name = ""
        try:
            with open(frame.filename) as f:
                lines = f.read().splitlines()[: frame.lineno]
            for line in reversed(lines):
                s = line.strip()
                if s.startswith(("def ", "async def ")):
                    name = s.split("def ", 1)[1].split("(", 1)[0]
                    break
        except OSError:
            pass
        _FUNCS[key] = name
    return _FUNCS[key]


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.best = None
        self.best_size = 0
        self.peak_seen = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            self.sample()

    def sample(self) -> None:
        cur, _peak = tracemalloc.get_traced_memory()
        self.peak_seen = max(self.peak_seen, cur)
        if cur > self.best_size * STEP:
            self.best = tracemalloc.take_snapshot()
            self.best_size = cur


def report(sampler: Sampler, argv: list[str], wall: float) -> None:
    snap = sampler.best
    _cur, peak = tracemalloc.get_traced_memory()
    groups: dict[str, int] = {}
    for stat in snap.statistics("traceback"):
        name = classify(stat.traceback)
        groups[name] = groups.get(name, 0) + stat.size
    total = sum(groups.values())
    print(f"\n## amber {' '.join(argv)}\n")
    print(f"traced peak {peak / 1e6:.0f} MB; snapshot at {total / 1e6:.0f} MB; wall under tracemalloc {wall:.0f} s\n")
    print("| structure | MB at the snapshot | share |")
    print("|---|---|---|")
    for name, size in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {size / 1e6:.1f} | {100 * size / total:.0f} % |")
    print("\nTop allocation sites:\n")
    for stat in snap.statistics("lineno")[:12]:
        fr = stat.traceback[0]
        print(f"- {stat.size / 1e6:.1f} MB, {stat.count} blocks: {os.path.relpath(fr.filename)}:{fr.lineno}")


def main() -> None:
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    from amber.cli.main import main as amber_main

    tracemalloc.start(FRAMES)
    sampler = Sampler()
    sampler.start()
    t0 = time.monotonic()
    try:
        amber_main(argv)
    except SystemExit as e:
        if e.code not in (0, None):
            print(f"amber exited {e.code}", file=sys.stderr)
    finally:
        sampler.stop.set()
        sampler.join()
        sampler.sample()
        report(sampler, argv, time.monotonic() - t0)


if __name__ == "__main__":
    main()
