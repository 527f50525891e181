"""Progress that tells the time, on a real pseudo-terminal: backup shows a percentage of a
scanned total, an ETA and the current file; restore and check know their totals from the
start; every line fits 80 columns; in a pipe nothing is drawn."""

from __future__ import annotations

import os
import re

import pytest

from cli_helpers import Amber, run_on_terminal, write

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
PERCENT = re.compile(r"\d{1,3}\.\d% ")
DEEP = "a-rather-long-folder-name-" * 3 + "/" + "and-another-long-one-" * 3


def on_terminal(amber: Amber, *args, cols: int = 80) -> tuple[int, list[str]]:
    """(exit code, lines drawn on stderr) of amber run with stderr on a pseudo-terminal
    `cols` wide; stdout is a pipe."""
    r, tty = run_on_terminal(amber, *args, cols=cols)
    raw = ANSI.sub(b"", tty)
    lines = [x for x in re.split(r"[\r\n]+", raw.decode("utf-8", "replace")) if x.strip()]
    return r.rc, lines


def big_tree(root) -> int:
    """Enough to take a moment to back up: many small files, a large one, a long path."""
    total = 0
    for i in range(1500):
        data = os.urandom(3000)
        write(root / f"d{i % 20}" / f"f{i}", data)
        total += len(data)
    data = os.urandom(40 << 20)
    write(root / "large.bin", data)
    write(root / DEEP / "deep-file-with-a-long-name.txt", b"deep")
    return total + len(data) + 4


def assert_fit(lines: list[str], cols: int = 80) -> None:
    wide = [x for x in lines if len(x) > cols]
    assert not wide, f"lines wider than {cols} columns: {wide[:3]}"


@pytest.mark.subprocess
def test_backup_progress_has_percentage_eta_current_file_and_fits_80_columns(repo, tmp_path):
    src = tmp_path / "src"
    big_tree(src)
    for cols in (80, 200):  # a wide terminal gets the same 80 columns
        rc, lines = on_terminal(repo, "backup", src, cols=cols)
        assert rc == 0, lines[-5:]
        assert_fit(lines)
        bars = [x for x in lines if "ETA " in x]
        assert any(PERCENT.search(x) for x in bars), lines[:20]
        assert any(re.search(r"ETA \d+:\d\d", x) for x in bars), bars[:20]
        assert any("100.0%" in x and "ETA 0:00" in x for x in bars), bars[-5:]
        assert any(str(src) in x or "\u2026" in x for x in lines if "ETA" not in x), lines[:20]
    # a re-backup reads nothing, and still ends at 100%
    rc, lines = on_terminal(repo, "backup", src)
    assert rc == 0 and any("100.0%" in x for x in lines), lines[-5:]


@pytest.mark.subprocess
def test_long_paths_are_cut_in_the_middle(repo, tmp_path):
    src = tmp_path / "src"
    write(src / DEEP / "x" / "y" / "deep-file.txt", os.urandom(12 << 20))
    rc, lines = on_terminal(repo, "backup", src)
    assert rc == 0
    assert_fit(lines)
    cut = [x for x in lines if "\u2026" in x]
    assert cut and all(len(x) == 80 for x in cut), lines[:10]
    assert any(x.startswith(str(src)[:20]) and x.endswith("deep-file.txt") for x in cut), cut[:5]


@pytest.mark.subprocess
def test_restore_and_check_show_totals_from_the_start(repo, tmp_path):
    src = tmp_path / "src"
    big_tree(src)
    summary = repo.backup(src)
    files = summary["files_total"]
    rc, lines = on_terminal(repo, "restore", "latest", "--target", tmp_path / "out")
    assert rc == 0, lines[-5:]
    assert_fit(lines)
    bars = [x for x in lines if "ETA " in x]
    assert bars and all(f"/{files} files" in x for x in bars), bars[:5]
    assert all(PERCENT.search(x) for x in bars), bars[:5]
    assert "100.0%" in bars[-1], bars[-3:]
    packs = len([p for p in (repo.repo / "data").rglob("*") if p.is_file() and not p.name.startswith(".")])
    rc, lines = on_terminal(repo, "check", "--read-data")
    assert rc == 0, lines[-5:]
    assert_fit(lines)
    reading = [x for x in lines if "packs" in x and "ETA" in x]
    assert reading and all(f"/{packs} packs" in x and PERCENT.search(x) for x in reading), reading[:5]


@pytest.mark.subprocess
def test_pipes_get_no_progress(repo, tmp_path):
    src = tmp_path / "src"
    write(src / "f", os.urandom(1 << 20))
    for args in (("backup", src), ("backup", src, "--dry-run"), ("restore", "latest", "--target", tmp_path / "o")):
        r = repo.run(*args)
        assert r.stderr == "", r
    r = repo.run("check", "--read-data")
    assert "ETA" not in r.stderr and "%" not in r.stderr, r
