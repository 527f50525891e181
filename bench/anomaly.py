#!/usr/bin/env python3
"""False and true positives of the anomaly alarm (docs/ANOMALIES.md), on real trees.

    PYTHONPATH=src python bench/anomaly.py [--scratch /tmp/anomaly-bench] [--corpus /tmp/benchrun/corpus]
                                           [--sdists DIR] [--rounds 3] [--out bench/results/anomaly-DATE.md]

Not a timed benchmark. Every tree is a copy in --scratch (the corpus is never touched):

  ordinary change   the bench corpus, a backup, then --rounds rounds of the kit's modify.py
                    (apply: ~1% of the kernel's text files get a line, 5 MiB of a binary are
                    overwritten) and revert, a backup after each;
  code history      release sdists of Django (4.2, 5.0, 5.1; `pip download --no-deps
                    --no-binary :all: django==V` into --sdists) checked out one after the other
                    into one folder as `git checkout` would (changed files rewritten, removed
                    ones deleted, the others untouched), a backup after each;
  attacks           bench/simulate_ransomware.py: a second copy of the corpus with 20% of its
                    files encrypted in place (no rename, no note: the compressibility signal
                    alone), the first copy after the rounds with 100% encrypted, renamed to
                    .locked and a note dropped, and the Django folder with 20% of it so.

Each backup's exit code and `anomalies` object are written as a Markdown table (and JSON lines
beside it, same name with .jsonl).
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MODIFY = "/work/shared/bench/modify.py"
AMBER = os.path.join(os.path.dirname(sys.executable), "amber")
SIGNALS = ("files_parent", "changed", "deleted", "added", "renamed", "collapsed", "ransom_notes")


class Repo:
    """One repository in the scratch folder, driven through the `amber` command."""

    def __init__(self, folder: str) -> None:
        self.env = dict(
            os.environ,
            AMBER_REPOSITORY=os.path.join(folder, "repo"),
            AMBER_PASSWORD="bench",
            XDG_CACHE_HOME=os.path.join(folder, "cache"),
        )
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        subprocess.run([AMBER, "init"], env=self.env, check=True, capture_output=True)

    def backup(self, path: str) -> tuple[int, dict]:
        p = subprocess.run([AMBER, "backup", "--json", path], env=self.env, capture_output=True)
        if p.returncode not in (0, 3, 4):
            raise SystemExit(f"backup failed ({p.returncode}): {p.stderr.decode()}")
        return p.returncode, json.loads(p.stdout)


def copy_tree(src: str, dst: str) -> str:
    shutil.rmtree(dst, ignore_errors=True)
    subprocess.run(["cp", "-a", src, dst], check=True)
    return dst


def checkout(sdist: str, folder: str) -> None:
    """Make `folder` hold the sdist's tree as `git checkout` would: rewrite changed files,
    delete removed ones, leave identical ones untouched."""
    with tempfile.TemporaryDirectory(dir=os.path.dirname(folder)) as tmp:
        with tarfile.open(sdist) as t:
            t.extractall(tmp, filter="data")
        (top,) = os.listdir(tmp)
        new = os.path.join(tmp, top)
        wanted = set()
        for d, _dirs, files in os.walk(new):
            for f in files:
                rel = os.path.relpath(os.path.join(d, f), new)
                wanted.add(rel)
                dst = os.path.join(folder, rel)
                if not (os.path.isfile(dst) and filecmp.cmp(os.path.join(d, f), dst, shallow=False)):
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copyfile(os.path.join(d, f), dst)
        for d, _dirs, files in os.walk(folder):
            for f in files:
                if os.path.relpath(os.path.join(d, f), folder) not in wanted:
                    os.unlink(os.path.join(d, f))


def attack(tree: str, *args: str) -> dict:
    p = subprocess.run(
        [sys.executable, os.path.join(HERE, "simulate_ransomware.py"), tree, *args], check=True, capture_output=True
    )
    return json.loads(p.stdout)


class Report:
    def __init__(self, out: str) -> None:
        self.out = out
        self.rows: list[dict] = []

    def add(self, case: str, step: str, rc: int, doc: dict, expect_alarm: bool) -> None:
        a = doc.get("anomalies")
        row = {"case": case, "step": step, "rc": rc, "expect_alarm": expect_alarm, "anomalies": a}
        for k in ("files_new", "files_changed", "files_unmodified", "duration_s"):
            row[k] = doc.get(k)
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        self.write()

    def write(self) -> None:
        with open(os.path.splitext(self.out)[0] + ".jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in self.rows)
        lines = [
            "| case | step | exit | alarm (expected) | new / changed / unmodified | "
            + " | ".join(SIGNALS)
            + " | reasons |",
            "|" + "---|" * (6 + len(SIGNALS)),
        ]
        for r in self.rows:
            a = r["anomalies"] or {}
            s = a.get("signals") or {}
            alarm = "—" if not a else ("**yes**" if a["alarm"] else "no")
            lines.append(
                f"| {r['case']} | {r['step']} | {r['rc']} | {alarm} ({'yes' if r['expect_alarm'] else 'no'}) | "
                f"{r['files_new']} / {r['files_changed']} / {r['files_unmodified']} | "
                + " | ".join(str(s.get(k, "—")) for k in SIGNALS)
                + " | "
                + ("; ".join(a.get("reasons") or []) or "—").replace("|", "/")
                + " |"
            )
        with open(self.out, "w") as f:
            f.write("\n".join(lines) + "\n")


def ordinary_corpus(rep: Report, scratch: str, corpus: str, rounds: int) -> str:
    tree = copy_tree(corpus, os.path.join(scratch, "corpus-a"))
    repo = Repo(os.path.join(scratch, "repo-a"))
    rep.add("corpus + modify.py", "first backup", *repo.backup(tree), False)
    state = os.path.join(scratch, "modify-state")
    shutil.rmtree(state, ignore_errors=True)
    for n in range(1, rounds + 1):
        subprocess.run([sys.executable, MODIFY, "apply", tree, state], check=True, capture_output=True)
        rep.add("corpus + modify.py", f"round {n}: apply", *repo.backup(tree), False)
        subprocess.run([sys.executable, MODIFY, "revert", tree, state], check=True, capture_output=True)
        rep.add("corpus + modify.py", f"round {n}: revert", *repo.backup(tree), False)
    info = attack(tree, "--fraction", "1", "--ext", ".locked")
    rep.add(
        "corpus attacked",
        f"100% encrypted, renamed .locked, note ({info['encrypted']} files)",
        *repo.backup(tree),
        True,
    )
    return tree


def partial_attack(rep: Report, scratch: str, corpus: str) -> None:
    tree = copy_tree(corpus, os.path.join(scratch, "corpus-b"))
    repo = Repo(os.path.join(scratch, "repo-b"))
    rep.add("corpus attacked", "first backup", *repo.backup(tree), False)
    info = attack(tree, "--fraction", "0.2", "--no-rename", "--note", "")
    step = f"20% encrypted in place, no rename, no note ({info['encrypted']} files)"
    rep.add("corpus attacked", step, *repo.backup(tree), True)
    shutil.rmtree(tree, ignore_errors=True)


def code_history(rep: Report, scratch: str, sdists: str) -> None:
    tars = sorted(
        (os.path.join(sdists, n) for n in os.listdir(sdists) if n.endswith(".tar.gz")),
        key=lambda p: [int(x) for x in os.path.basename(p).split("-")[1][: -len(".tar.gz")].split(".")],
    )
    tree = os.path.join(scratch, "django")
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(tree)
    repo = Repo(os.path.join(scratch, "repo-django"))
    for sdist in tars:
        checkout(sdist, tree)
        rep.add("Django checkout", os.path.basename(sdist), *repo.backup(tree), False)
    info = attack(tree, "--fraction", "0.2", "--ext", ".lockbit", "--note", "RESTORE_FILES.txt")
    rep.add(
        "Django attacked",
        f"20% encrypted, renamed .lockbit, note ({info['encrypted']} files)",
        *repo.backup(tree),
        True,
    )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scratch", default="/tmp/anomaly-bench")
    ap.add_argument("--corpus", default="/tmp/benchrun/corpus")
    ap.add_argument("--sdists", default="/tmp/anomaly-bench/sdists")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-corpus", action="store_true")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    ap.add_argument("--out", default=os.path.join(HERE, "results", f"anomaly-{stamp}.md"))
    a = ap.parse_args(argv)
    os.makedirs(a.scratch, exist_ok=True)
    rep = Report(a.out)
    code_history(rep, a.scratch, a.sdists)
    if not a.skip_corpus:
        partial_attack(rep, a.scratch, a.corpus)
        tree = ordinary_corpus(rep, a.scratch, a.corpus, a.rounds)
        shutil.rmtree(tree, ignore_errors=True)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
