"""Measure how much a backup interrupted half-way uploads again when it is run a second time.

    PYTHONPATH=src python3 bench/resume.py WORKDIR [--mib 400] [--amber PATH]

Makes WORKDIR/src (random, incompressible files: MIB MiB in 1 MiB files and four of 20 MiB),
then for SIGINT and SIGKILL: a new repository, `amber backup` interrupted once half of the data
is under the repository's data/, `amber check --json` (packs no index names), the same backup
again (`bytes_added` against the data's size), and `amber prune --json` right after another
interrupted run (does the dead run's marker make it wait?). Prints one JSON line per case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

MIB = 1 << 20


def make_tree(root: Path, mib: int) -> int:
    if root.is_dir():
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    big = 4
    for i in range(big):
        (root / "big").mkdir(parents=True, exist_ok=True)
        (root / "big" / f"b{i}.bin").write_bytes(os.urandom(20 * MIB))
    for i in range(mib - 20 * big):
        d = root / f"d{i % 16:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:04d}.bin").write_bytes(os.urandom(MIB))
    old = time.time() - 3600
    for p in root.rglob("*"):
        os.utime(p, (old, old))
    return make_tree(root, mib)


def data_bytes(repo: Path) -> int:
    total = 0
    for sub in (repo / "data").glob("*"):
        for p in sub.iterdir():
            if not p.name.startswith("."):
                try:
                    total += p.stat().st_size
                except FileNotFoundError:
                    pass
    return total


def env_for(work: Path, repo: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMBER_", "XDG_"))}
    env.update(
        AMBER_REPOSITORY=str(repo),
        AMBER_PASSWORD="resume-bench",
        XDG_CACHE_HOME=str(work / "cache"),
        XDG_STATE_HOME=str(work / "state"),
        XDG_DATA_HOME=str(work / "xdg-data"),
    )
    return env


def run_json(amber: str, env: dict, *args) -> tuple[dict, float]:
    t0 = time.monotonic()
    r = subprocess.run([amber, *args, "--json"], env=env, capture_output=True, text=True)
    if r.returncode not in (0, 20):
        raise SystemExit(f"amber {' '.join(args)}: exit {r.returncode}\n{r.stderr}")
    return json.loads(r.stdout), time.monotonic() - t0


def interrupted(amber: str, env: dict, repo: Path, src: Path, sig: int, total: int) -> tuple[int, int]:
    """(bytes under data/ when the signal was sent, and once the process ended)."""
    p = subprocess.Popen([amber, "backup", str(src)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while p.poll() is None and data_bytes(repo) < total // 2:
        time.sleep(0.005)
    at = data_bytes(repo)
    p.send_signal(sig)
    p.wait()
    if p.returncode == 0:
        raise SystemExit("the backup finished before it could be interrupted")
    return at, data_bytes(repo)


def case(amber: str, work: Path, src: Path, total: int, sig: int) -> dict:
    repo = work / f"repo-{sig}"
    shutil.rmtree(repo, ignore_errors=True)
    shutil.rmtree(work / "cache", ignore_errors=True)
    env = env_for(work, repo)
    subprocess.run([amber, "init"], env=env, check=True, capture_output=True)
    at, left = interrupted(amber, env, repo, src, sig, total)
    check, _ = run_json(amber, env, "check")
    again, seconds = run_json(amber, env, "backup", str(src))
    out = {
        "signal": signal.Signals(sig).name,
        "data_bytes": total,
        "stored_at_signal": at,
        "stored_after_exit": left,
        "unindexed_packs": check.get("packs_unindexed"),
        "unindexed_bytes": check.get("bytes_unindexed"),
        "second_bytes_added": again["bytes_added"],
        "second_share": round(again["bytes_added"] / total, 3),
        "second_seconds": round(seconds, 1),
    }
    # prune right after another interrupted run: not blocked by the dead run's marker
    shutil.rmtree(repo)
    subprocess.run([amber, "init"], env=env, check=True, capture_output=True)
    interrupted(amber, env, repo, src, sig, total)
    pruned, seconds = run_json(amber, env, "prune")
    out.update(
        prune_waiting=pruned["waiting_for_runs"], prune_packs_deleted=len(pruned["packs_deleted"]),
        prune_seconds=round(seconds, 1),
    )
    shutil.rmtree(repo)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("work", type=Path)
    ap.add_argument("--mib", type=int, default=400)
    ap.add_argument("--amber", default=str(Path(sys.executable).parent / "amber"))
    a = ap.parse_args()
    total = make_tree(a.work / "src", a.mib)
    for sig in (signal.SIGINT, signal.SIGKILL):
        print(json.dumps(case(a.amber, a.work, a.work / "src", total, sig)), flush=True)


if __name__ == "__main__":
    main()
