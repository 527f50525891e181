"""Locks that follow the retention schedule (`init --lock-policy`): the first snapshot of each UTC
day, ISO week, month and year of a host and its paths is locked for the longest tier it fills;
`forget` with the matching keep policy keeps exactly those; the policy only ever lengthens."""

from __future__ import annotations

import datetime as dt

import pytest

from amber.clock import FakeClock, add_duration
from amber.errors import Locked, UsageError
from amber.repository import KeepPolicy, parse_lock_policy
from amber.retention import tiers

from .helpers import backup, init_repo, make_source

POLICY = "daily=14d,weekly=8w,monthly=13mo,yearly=7y"
# (when, the tier it fills): Mon 5 Jan 2026 is the first of everything; later the same day
# nothing; the next day a day; the next Monday a week; 1 Feb (a Sunday, ISO week 5) a month
TIMELINE = [
    (dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC), "yearly"),
    (dt.datetime(2026, 1, 5, 15, tzinfo=dt.UTC), None),
    (dt.datetime(2026, 1, 6, 8, tzinfo=dt.UTC), "daily"),
    (dt.datetime(2026, 1, 12, 8, tzinfo=dt.UTC), "weekly"),
    (dt.datetime(2026, 2, 1, 8, tzinfo=dt.UTC), "monthly"),
    (dt.datetime(2026, 2, 1, 20, tzinfo=dt.UTC), None),
]


@pytest.fixture
def scheduled(tmp_path):
    clock = FakeClock(TIMELINE[0][0])
    repo = init_repo(tmp_path / "repo", clock, lock_policy=parse_lock_policy(POLICY))
    src = make_source(tmp_path / "src", {"a.txt": b"a\n"})
    snaps = []
    for when, _tier in TIMELINE:
        clock._now = when
        snaps.append(backup(repo, src))
    return repo, clock, snaps


def test_each_snapshot_gets_the_longest_tier_it_fills(scheduled):
    repo, _clock, snaps = scheduled
    for snap, (when, tier) in zip(snaps, TIMELINE, strict=True):
        assert snap.doc.get("lock_tier") == tier, (when, snap.doc.get("lock_tier"))
        p = repo.protection(snap)
        if tier is None:
            assert p.until is None
        else:
            assert p.mode == "governance" and p.until == add_duration(
                when, {"daily": "14d", "weekly": "8w", "monthly": "13mo", "yearly": "7y"}[tier]
            )
        assert repo.snapshot_json(snap)["lock_tier"] == tier


def test_forget_with_the_matching_policy_keeps_what_the_policy_locked(scheduled):
    repo, _clock, snaps = scheduled
    res = repo.forget_policy(KeepPolicy(daily=30, weekly=8, monthly=13, yearly=7), dry_run=True)
    locked = {s.id for s, (_w, tier) in zip(snaps, TIMELINE, strict=True) if tier}
    assert set(res.keep) == locked, res
    assert set(res.remove) == {s.id for s in snaps} - locked  # the second snapshot of a day goes
    assert not res.locked, res.locked  # nothing it wants to remove is locked


def test_the_policy_only_lengthens(scheduled):
    repo, _clock, _snaps = scheduled
    repo.change_settings(lock_policy=parse_lock_policy("daily=30d,weekly=8w,monthly=13mo,yearly=10y"))
    assert repo.settings.lock_policy["tiers"]["daily"] == "30d"
    for shorter in ("daily=7d,weekly=8w,monthly=13mo,yearly=10y", "daily=30d,weekly=8w,monthly=13mo"):
        with pytest.raises(Locked):
            repo.change_settings(lock_policy=parse_lock_policy(shorter))
    repo.change_settings(lock_policy=parse_lock_policy("daily=30d,weekly=8w,monthly=13mo,yearly=10y", "compliance"))
    with pytest.raises(Locked, match="compliance"):
        repo.change_settings(lock_policy=parse_lock_policy("daily=30d,weekly=8w,monthly=13mo,yearly=10y"))
    assert repo.settings.lock_policy["mode"] == "compliance"


def test_a_longer_retain_wins_and_compliance_wins(tmp_path):
    clock = FakeClock(TIMELINE[0][0])
    repo = init_repo(tmp_path / "repo", clock, lock_policy=parse_lock_policy("daily=14d", "compliance"))
    src = make_source(tmp_path / "src", {"a.txt": b"a\n"})
    snap = backup(repo, src, seconds=30 * 86400, mode="governance")
    p = repo.protection(snap)
    assert snap.doc["lock_tier"] == "daily" and p.mode == "compliance"
    assert p.until == TIMELINE[0][0] + dt.timedelta(days=30)


@pytest.mark.parametrize("bad", ["", "daily", "hourly=1d", "daily=14d,daily=20d", "daily=soon", "weekly=8w,,"])
def test_a_malformed_policy_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        tiers.parse(bad, None)
