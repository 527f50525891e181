"""Summarize a scale.sh CSV: per size and step, wall, CPU and peak RSS per tool, the
amber/restic ratios, and the growth law of peak RSS (fixed MB + bytes per file).

    python3 summarize_scale.py results/scale-<run>.csv [--header header.txt]

The law is a least-squares line through (files, peak RSS) over the sizes run;
with one size only the RSS per file is printed (the fixed part is unknown).
"""

from __future__ import annotations

import argparse
import csv

STEPS = ("backup1", "backup2", "restore", "check")


def fit(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """(fixed bytes, bytes per file) of the least-squares line, or None under two sizes."""
    if len({n for n, _ in points}) < 2:
        return None
    k = len(points)
    mx = sum(n for n, _ in points) / k
    my = sum(r for _, r in points) / k
    slope = sum((n - mx) * (r - my) for n, r in points) / sum((n - mx) ** 2 for n, _ in points)
    return my - slope * mx, slope


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--header")
    args = ap.parse_args()
    with open(args.csv) as f:
        rows = list(csv.DictReader(f))
    by = {(int(r["files"]), r["tool"], r["step"]): r for r in rows}
    tools = sorted({r["tool"] for r in rows}, reverse=True)  # restic before amber
    sizes = sorted({int(r["files"]) for r in rows})
    print("# Scale benchmark: many small files\n")
    if args.header:
        with open(args.header) as f:
            print("```\n" + f.read().strip() + "\n```\n")
    cols = " | ".join(f"{t} wall s | {t} CPU s | {t} RSS MB" for t in tools)
    print(f"| files | step | {cols} | amber/restic wall |")
    print("|---|---|" + "---|---|---|" * len(tools) + "---|")
    for n in sizes:
        for step in STEPS:
            cells, walls = [], {}
            for t in tools:
                r = by.get((n, t, step))
                if r is None:
                    cells += ["", "", ""]
                    continue
                walls[t] = float(r["wall_s"])
                bad = "" if r["rc"] == "0" else f" (rc {r['rc']})"
                cells += [
                    f"{float(r['wall_s']):.2f}{bad}",
                    f"{float(r['user_s']) + float(r['sys_s']):.2f}",
                    f"{int(r['maxrss_kb']) / 1024:.0f}",
                ]
            ratio = f"{walls['amber'] / walls['restic']:.2f}" if {"amber", "restic"} <= walls.keys() else ""
            print(f"| {n:,} | {step} | " + " | ".join(cells) + f" | {ratio} |")
    print("\n## Growth of peak RSS\n")
    print("| tool | step | law |")
    print("|---|---|---|")
    for t in tools:
        for step in STEPS:
            pts = [(n, int(by[(n, t, step)]["maxrss_kb"]) * 1024.0) for n in sizes if (n, t, step) in by]
            if not pts:
                continue
            law = fit(pts)
            if law is None:
                n, r = pts[0]
                text = f"{r / 1e6:.0f} MB at {n:,} files = {r / n:.0f} bytes per file (all of it)"
            else:
                text = f"{law[0] / 1e6:.0f} MB + {law[1]:.0f} bytes per file"
            print(f"| {t} | {step} | {text} |")


if __name__ == "__main__":
    main()
