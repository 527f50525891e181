"""The clock guard: nothing a moved clock would unlock early is deleted, unless trust_clock.

The window is the shortest lock active at the trusted time (at most 31 days);
a jump longer than it, seen now or recorded in the audit log, blocks the
deletion of what was locked until a time inside it; what was never locked, or
expired before the jump, is deleted as usual."""

from __future__ import annotations

import datetime as dt

import pytest

from amber.errors import Locked
from amber.retention import clockguard

from .helpers import DAY, HOUR, backup, data_keys, make_source, open_repo, rand


@pytest.fixture
def src(tmp_path):
    return make_source(tmp_path / "src", {"f.bin": rand(20_000, "f")})


@pytest.fixture
def two(repo, clock, tmp_path, src):
    """Two unlocked snapshots at START and START+1h; the clock then stands at START+2h."""
    s1 = backup(repo, src, clock=clock, step=HOUR)
    make_source(tmp_path / "src", {"g.bin": rand(20_000, "g")})
    s2 = backup(repo, src, clock=clock, step=HOUR)
    return s1, s2


def changed(tmp_path, name: str):
    """The source with one more file, so the next backup stores new data."""
    return make_source(tmp_path / "src", {f"{name}.bin": rand(20_000, name)})


def logged(repo, kind: str) -> list[dict]:
    return [ev for ev, _raw in repo.audit.entries() if ev.get("type") == kind]


def ids(repo_path, clock) -> set[str]:
    return {s.id for s in open_repo(repo_path, clock).snapshots()}


# -- the clock going backwards -----------------------------------------------------------


def test_forget_and_prune_work_with_a_sane_clock(repo, clock, two):
    s1, _ = two
    repo.forget([s1])
    assert repo.prune().packs_deleted


@pytest.mark.parametrize("op", ["forget", "prune"])
def test_a_clock_behind_the_newest_snapshot_refuses_deletion(repo, repo_path, clock, two, op):
    s1, s2 = two
    clock.advance(-5 * HOUR)  # behind s2 (and s1)
    before = data_keys(repo)
    with pytest.raises(Locked) as e:
        if op == "forget":
            repo.forget([s1])
        else:
            repo.prune()
    assert "behind" in str(e.value) and e.value.remedy == "trust-clock"
    assert ids(repo_path, clock) == {s1.id, s2.id}
    assert data_keys(repo) == before
    # the administrator checked the clock
    if op == "forget":
        assert repo.forget([s1], trust_clock=True).remove == [s1.id]
    else:
        repo.prune(trust_clock=True)


def test_a_small_step_back_is_tolerated(repo, clock, two):
    s1, _ = two
    clock.advance(-HOUR - 5 * 60)  # five minutes behind the newest snapshot
    repo.forget([s1])


def test_a_clock_behind_this_clients_last_use_refuses_deletion(repo, clock, two):
    s1, _ = two
    clock.advance(20 * DAY)
    repo.prune()  # remembered: this client saw START + 20 days (the prune records nothing)
    clock.advance(-15 * DAY)  # still after every record in the repository
    with pytest.raises(Locked) as e:
        repo.forget([s1])
    assert "last use" in str(e.value)
    repo.forget([s1], trust_clock=True)


def test_dry_runs_are_not_refused(repo, clock, two):
    s1, _ = two
    clock.advance(-5 * HOUR)
    assert repo.forget([s1], dry_run=True).remove == [s1.id]
    repo.prune(dry_run=True)


# -- the clock jumping forward -------------------------------------------------------------


def test_a_jump_does_not_stop_deleting_what_was_never_locked(repo, clock, two):
    s1, _ = two
    clock.advance(60 * DAY)
    assert repo.forget([s1]).remove == [s1.id]
    assert repo.prune().packs_deleted


def test_a_jump_longer_than_the_lock_refuses_deleting_it(repo, repo_path, clock, src):
    """The attack of the issue: a 7-day lock, the clock moved 8 days: refused, naming both."""
    snap = backup(repo, src, clock=clock, seconds=7 * DAY)
    clock.advance(8 * DAY)
    with pytest.raises(Locked) as e:
        repo.forget([snap])
    msg = str(e.value)
    assert e.value.remedy == "trust-clock"
    assert f"snapshot {snap.short_id}" in msg and "clock jump of 8 days" in msg and "7 days" in msg, msg
    assert snap.id in ids(repo_path, clock)
    # the administrator checked the clock: the deletion proceeds, and says so
    res = repo.forget([snap], trust_clock=True)
    assert res.remove == [snap.id]
    ev = logged(repo, "forget")[-1]["details"]
    assert ev["trust_clock"] is True and ev["clock_jumps"], ev
    assert ev["clock_jumps"][-1]["to"].startswith("2030-01-09")


def test_the_window_is_never_longer_than_31_days(repo, clock, src):
    snap = backup(repo, src, clock=clock, mode="governance", seconds=40 * DAY)
    clock.advance(41 * DAY)  # the lock looks expired, but no write witnessed this time
    with pytest.raises(Locked) as e:
        repo.forget([snap])
    assert "31 days" in str(e.value)
    assert repo.forget([snap], trust_clock=True).remove == [snap.id]


def test_short_locks_shrink_the_window(repo, clock, src):
    snap = backup(repo, src, clock=clock, seconds=HOUR, step=0)
    clock.advance(2 * HOUR)
    with pytest.raises(Locked) as e:
        repo.forget([snap])
    assert "1 hour" in str(e.value), str(e.value)


def test_time_passing_in_steps_shorter_than_the_lock_is_trusted(repo, clock, src, tmp_path):
    """Daily use of a repository with 7-day locks needs no flag: every day was witnessed."""
    first = backup(repo, src, clock=clock, seconds=7 * DAY, step=DAY)
    for day in range(8):
        backup(repo, changed(tmp_path, f"d{day}"), clock=clock, seconds=7 * DAY, step=DAY)
    assert repo.forget([first]).remove == [first.id]
    repo.prune()


def test_a_lock_that_expired_before_the_jump_may_be_deleted(repo, clock, src, tmp_path):
    snap = backup(repo, src, clock=clock, seconds=HOUR, step=30 * 60)
    for i in range(4):  # witnessed every half hour, past the lock's end
        backup(repo, changed(tmp_path, f"h{i}"), clock=clock, step=30 * 60)
    clock.advance(40 * DAY)
    assert repo.forget([snap]).remove == [snap.id]


def test_a_backup_under_a_moved_clock_records_the_jump(repo, repo_path, clock, src, tmp_path):
    """Once a backup was made 8 days ahead the clock agrees with the record, but the jump it
    recorded still blocks what expired inside it."""
    old = backup(repo, src, clock=clock, seconds=7 * DAY)
    warnings: list[str] = []
    repo.warn = warnings.append
    clock.advance(8 * DAY)
    new = backup(repo, changed(tmp_path, "n"), clock=clock)
    assert warnings and "clock jump of 8 days" in warnings[0], warnings
    assert new.doc["clock_jump"]["from"].startswith("2030-01-01")
    event = next(ev for ev in logged(repo, "snapshot") if ev["snapshot"] == new.id)
    assert event["details"]["clock_jump"] == new.doc["clock_jump"]
    with pytest.raises(Locked) as e:
        repo.forget([old])
    assert f"snapshot {old.short_id}" in str(e.value) and "(event" in str(e.value)
    assert old.id in ids(repo_path, clock)
    marks = repo.snapshot_overrides()[new.id]
    assert [o.kind for o in marks] == ["clock-jump"] and not marks[0].confirmed


def test_any_event_under_a_moved_clock_is_a_recorded_jump(repo, clock, src):
    """A check (or any event) written with the clock moved leaves a gap in the log."""
    snap = backup(repo, src, clock=clock, seconds=7 * DAY)
    clock.advance(8 * DAY)
    repo.check()
    with pytest.raises(Locked):
        repo.forget([snap])


def test_trusting_the_clock_confirms_the_jumps_before_it(repo, clock, src, tmp_path):
    a = backup(repo, src, clock=clock, seconds=7 * DAY)
    b = backup(repo, changed(tmp_path, "b"), clock=clock, seconds=7 * DAY)
    clock.advance(8 * DAY)
    repo.forget([a], trust_clock=True)
    assert repo.forget([b]).remove == [b.id]  # the jump was confirmed by the forget of a


def test_forget_by_policy_refuses_inside_a_jump(repo, clock, src, tmp_path):
    backup(repo, src, clock=clock, seconds=7 * DAY)
    backup(repo, changed(tmp_path, "b"), clock=clock)
    clock.advance(8 * DAY)
    with pytest.raises(Locked) as e:
        repo.forget_policy(clockguard_policy())
    assert "clock jump" in str(e.value)


def clockguard_policy():
    from amber.repository import keep_policy

    return keep_policy(last=1)


def test_prune_keeps_packs_whose_retention_ended_inside_a_jump(repo, clock, src):
    """A lock lifted early by --bypass-governance leaves packs under their own retention;
    a prune under a moved clock must not delete them."""
    snap = backup(repo, src, clock=clock, mode="governance", seconds=7 * DAY)
    repo.forget([snap], bypass_governance=True)
    before = data_keys(repo)
    clock.advance(8 * DAY)
    with pytest.raises(Locked) as e:
        repo.prune()
    assert "pack " in str(e.value) and "clock jump" in str(e.value)
    assert data_keys(repo) == before
    assert repo.prune(trust_clock=True).packs_deleted


# -- overrides are loud ---------------------------------------------------------------


def test_overrides_are_listed_by_check_and_marked_on_snapshots(repo, clock, src, tmp_path):
    a = backup(repo, src, clock=clock, mode="governance", seconds=7 * DAY)
    b = backup(repo, changed(tmp_path, "b"), clock=clock, mode="governance", seconds=7 * DAY)
    repo.lock(b, "governance", clock.now() + dt.timedelta(days=1), bypass_governance=True)  # shortened
    repo.forget([a], bypass_governance=True)
    warnings = [w for w in repo.check().warnings if "override" in w]
    assert len(warnings) == 1 and warnings[0].startswith("2 override(s): "), warnings
    assert "lock --bypass-governance of " + b.short_id in warnings[0]
    assert "forget --bypass-governance of " + a.short_id in warnings[0]
    marks = repo.snapshot_overrides()[b.id]
    assert [o.kind for o in marks] == ["bypass-governance"]
    assert repo.snapshot_json(b)["overrides"][0]["kind"] == "bypass-governance"


def test_an_override_only_a_lock_record_shows_is_listed(repo, clock, src):
    snap = backup(repo, src, clock=clock, mode="governance", seconds=7 * DAY)
    # a record the log does not show (written behind it): listed on its own
    repo.event_store.write(
        snap.id, "lock", None, mode="governance", until="2030-01-02T00:00:00Z", bypass_governance=True
    )
    found = [o for o in clockguard.repository_overrides(repo) if o.kind == "bypass-governance"]
    assert len(found) == 1 and found[0].event is None and found[0].record.startswith(f"locks/{snap.id}/")
    assert "not in the audit log" in found[0].describe()
