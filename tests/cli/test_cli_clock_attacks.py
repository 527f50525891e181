"""Moving the clock as ransomware on a backup client would: no privilege, just faketime.

Every attack runs the real `amber` with libfaketime preloaded at '+8d' (an LD_PRELOAD
library, tests/fakeclock.py: the process sees the clock moved, nothing else does), then checks
what a user would: the exit code, the message naming the snapshot or pack
and the jump, that nothing was deleted, and that an administrator's
`--trust-clock` goes through and is recorded loudly.
"""

from __future__ import annotations

import subprocess

import pytest

from fakeclock import LIBFAKETIME, NO_FAKETIME, moved_clock

from cli_helpers import Result, make_source, packs

pytestmark = [pytest.mark.subprocess, pytest.mark.skipif(LIBFAKETIME is None, reason=NO_FAKETIME)]


def rnd(n: int, seed: str) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def at(user, offset: str, *args, expect: int | None = 0) -> Result:
    """`amber ARGS` in a real process whose clock is moved by OFFSET (faketime's '+8d')."""
    p = subprocess.run(
        user.cmd(*args), env=moved_clock(user.env(), offset), stdin=subprocess.DEVNULL, capture_output=True, timeout=300
    )
    r = Result(args, p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in r.stderr, f"a traceback reached the user:\n{r!r}"
    if expect is not None:
        assert r.rc == expect, f"expected exit {expect} under faketime {offset}:\n{r!r}"
    return r


def snapshot_ids(user, offset: str = "+0") -> list[str]:
    return [d["id"] for d in at(user, offset, "snapshots", "--json").json()]


@pytest.fixture
def src(tmp_path) -> str:
    return make_source(tmp_path / "src", {"a.bin": rnd(60_000, "a"), "notes.txt": b"clock\n" * 100})


def more(tmp_path, name: str) -> str:
    """The source with one more file: the next backup stores new data."""
    return make_source(tmp_path / "src", {f"{name}.bin": rnd(30_000, name)})


def test_forget_with_the_clock_moved_past_a_7_day_lock_is_refused(repo, src):
    """The issue's attack: `faketime +8d amber forget` of a snapshot locked for 7 days."""
    sid = repo.backup(src, args=("--retain", "7d"))["snapshot_id"]
    r = at(repo, "+8d", "forget", sid, expect=30)
    assert sid[:8] in r.stderr and "clock jump of 8 days" in r.stderr and "7 days" in r.stderr, r
    assert "--trust-clock" in r.stderr
    assert snapshot_ids(repo, "+8d") == [sid], "nothing was deleted"
    # an administrator who checked the clock confirms it: the deletion is done and recorded
    at(repo, "+8d", "forget", sid, "--trust-clock")
    assert snapshot_ids(repo, "+8d") == []
    forget = [ev for ev in at(repo, "+8d", "audit", "log", "--json").json() if ev["type"] == "forget"]
    assert forget[-1]["snapshot"] == sid and forget[-1]["details"]["trust_clock"] is True
    assert forget[-1]["details"]["clock_jumps"], forget[-1]
    plain = at(repo, "+8d", "audit", "log").out
    assert any("forget" in line and sid[:8] in line for line in plain.splitlines()), plain
    r = at(repo, "+8d", "check")
    assert f"1 override(s): event {forget[-1]['seq']} forget --trust-clock of {sid[:8]}" in r.stderr, r


def test_a_backup_made_with_a_moved_clock_records_the_jump(repo, src, tmp_path):
    """Once a backup is made 8 days ahead the clock agrees with the newest record; the jump the
    backup recorded still blocks the forget of an older 7-day-locked snapshot."""
    old = repo.backup(src, args=("--retain", "7d"))["snapshot_id"]
    r = at(repo, "+8d", "backup", more(tmp_path, "b"))
    assert "warning:" in r.stderr and "clock jump of 8 days" in r.stderr, r
    new = next(i for i in snapshot_ids(repo, "+8d") if i != old)
    r = at(repo, "+8d", "forget", old, expect=30)
    assert old[:8] in r.stderr and "clock jump" in r.stderr, r
    assert old in snapshot_ids(repo, "+8d")
    # the snapshot made under the jump is marked, in the table and in --json
    doc = {d["id"]: d for d in at(repo, "+8d", "snapshots", "--json").json()}[new]
    assert [o["kind"] for o in doc["overrides"]] == ["clock-jump"] and doc["overrides"][0]["confirmed"] is False
    table = at(repo, "+8d", "snapshots").out
    assert f"{new[:8]} !" in table and f"! {new[:8]}: " in table, table
    r = at(repo, "+8d", "check")
    assert "1 unconfirmed clock jump(s)" in r.stderr, r


def test_short_locks_make_the_window_short(repo, src):
    sid = repo.backup(src, args=("--retain", "1h"))["snapshot_id"]
    r = at(repo, "+2h", "forget", sid, expect=30)
    assert sid[:8] in r.stderr and "1 hour" in r.stderr, r
    assert snapshot_ids(repo) == [sid]


def test_prune_under_a_jump_keeps_packs_whose_retention_ended_inside_it(repo, src):
    """A governance lock lifted with --bypass-governance leaves the packs under their own
    7-day retention; a prune with the clock moved 8 days must not delete them."""
    sid = repo.backup(src, args=("--retain", "7d"))["snapshot_id"]
    repo.run("forget", sid, "--bypass-governance")
    before = sorted(packs(repo.repo))
    assert before
    r = at(repo, "+8d", "prune", expect=30)
    assert "pack " in r.stderr and "clock jump of 8 days" in r.stderr, r
    assert sorted(packs(repo.repo)) == before, "nothing was deleted"
    r = at(repo, "+8d", "check")
    assert f"forget --bypass-governance of {sid[:8]}" in r.stderr, r
    at(repo, "+8d", "prune", "--trust-clock")
    assert sorted(packs(repo.repo)) != before


def test_daily_use_with_30_day_locks_needs_no_flag(repo, src, tmp_path):
    """Backups every five days, each locked for 30 days: every step was witnessed, so the
    oldest snapshot goes once its lock is over, with no flag."""
    first = at(repo, "+0d", "backup", src, "--retain", "30d", "--json").json()["snapshot_id"]
    for day in range(5, 40, 5):
        at(repo, f"+{day}d", "backup", more(tmp_path, f"d{day}"), "--retain", "30d")
    at(repo, "+36d", "forget", first)
    at(repo, "+36d", "prune")
    assert first not in snapshot_ids(repo, "+36d")
    assert "override" not in at(repo, "+36d", "check").stderr


def test_an_event_written_under_the_moved_clock_does_not_make_the_jump_trusted(repo, src, tmp_path):
    """Writing any event with the clock moved (a check, the forget of an unlocked snapshot) moves
    the newest record forward too; the gap it leaves in the audit log still counts as a jump."""
    locked = repo.backup(src, args=("--retain", "7d"))["snapshot_id"]
    unlocked = repo.backup(more(tmp_path, "u"))["snapshot_id"]
    at(repo, "+8d", "check")
    r = at(repo, "+8d", "forget", "--keep-last", "1", expect=30)  # keeps the newer, unlocked one
    assert locked[:8] in r.stderr and "(event " in r.stderr, r
    at(repo, "+8d", "forget", unlocked)  # never locked: deleted as usual
    r = at(repo, "+8d", "forget", locked, expect=30)
    assert locked[:8] in r.stderr and "clock jump" in r.stderr, r
    assert snapshot_ids(repo, "+8d") == [locked]
