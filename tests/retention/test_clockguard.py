"""The clock guard: nothing is deleted while the clock looks moved, unless trust_clock."""

from __future__ import annotations

import pytest

from amber.errors import Locked

from .helpers import DAY, HOUR, backup, data_keys, make_source, open_repo, rand


@pytest.fixture
def two(repo, clock, tmp_path):
    """Two unlocked snapshots at START and START+1h; the clock then stands at START+2h."""
    src = make_source(tmp_path / "src", {"f.bin": rand(20_000, "f")})
    s1 = backup(repo, src, clock=clock, step=HOUR)
    make_source(tmp_path / "src", {"g.bin": rand(20_000, "g")})
    s2 = backup(repo, src, clock=clock, step=HOUR)
    return s1, s2


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
    assert {s.id for s in open_repo(repo_path, clock).snapshots()} == {s1.id, s2.id}
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


@pytest.mark.parametrize("op", ["forget", "prune"])
def test_a_clock_far_ahead_of_the_newest_record_refuses_deletion(repo, repo_path, clock, two, op):
    s1, s2 = two
    clock.advance(32 * DAY)
    with pytest.raises(Locked) as e:
        if op == "forget":
            repo.forget([s1])
        else:
            repo.forget([s1], trust_clock=True)
            repo.refresh()
            clock.advance(32 * DAY)
            repo.prune()
    assert "ahead" in str(e.value)
    if op == "forget":
        assert {s.id for s in open_repo(repo_path, clock).snapshots()} == {s1.id, s2.id}
        repo.forget([s1], trust_clock=True)
    else:
        assert repo.prune(trust_clock=True).packs_deleted


def test_thirty_days_ahead_is_still_trusted(repo, clock, two):
    s1, _ = two
    clock.advance(30 * DAY)
    repo.forget([s1])


def test_a_clock_jump_cannot_expire_a_lock_early(repo, clock, tmp_path):
    src = make_source(tmp_path / "src", {"f.bin": rand(20_000, "f")})
    snap = backup(repo, src, clock=clock, mode="governance", seconds=40 * DAY)
    clock.advance(41 * DAY)  # the lock looks expired, but no write witnessed this time
    with pytest.raises(Locked) as e:
        repo.forget([snap])
    assert "ahead" in str(e.value)
    assert repo.forget([snap], trust_clock=True).remove == [snap.id]


def test_a_clock_behind_this_clients_last_use_refuses_deletion(repo, clock, two):
    s1, _ = two
    clock.advance(20 * DAY)
    repo.prune()  # remembered: this client saw START + 20 days
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


def test_trusting_the_clock_is_recorded(repo, clock, two):
    """Overriding the guard is an administrator's decision: the forget it allowed says so."""
    s1, _ = two
    clock.advance(-5 * HOUR)
    repo.forget([s1], trust_clock=True)
    repo.refresh()
    recorded = [e for e in repo.events().get(s1.id, []) if e.get("type") == "forget"]
    recorded += [ev for ev, _raw in repo.audit.entries() if ev.get("type") == "forget" and ev.get("snapshot") == s1.id]
    assert recorded, "the forget is recorded"
    assert any(e.get("trust_clock") or (e.get("details") or {}).get("trust_clock") for e in recorded), recorded
