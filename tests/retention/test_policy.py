"""policy.apply: which snapshots a keep policy keeps, as restic decides (pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hypothesis import example, given, settings
from hypothesis import strategies as st

from amber.retention.policy import KeepPolicy, apply

UTC = dt.UTC
NOW = dt.datetime(2031, 6, 1, tzinfo=UTC)


@dataclass(frozen=True)
class S:
    id: str
    time: dt.datetime


def snaps_at(*times) -> list[S]:
    return [S(f"{i:04d}", t) for i, t in enumerate(times)]


def kept(snaps, policy, now=NOW) -> set[str]:
    return set(apply(snaps, policy, now))


def ids(snaps, idx) -> set[str]:
    return {snaps[i].id for i in idx}


def local(y, mo, d, h=12, mi=0) -> dt.datetime:
    """A time given in the local zone (restic's buckets use local time, so does amber)."""
    return dt.datetime(y, mo, d, h, mi).astimezone().astimezone(UTC)


# -- examples ----------------------------------------------------------------------------


def test_keep_last():
    s = snaps_at(*(local(2031, 1, 1, h) for h in range(10)))
    assert kept(s, KeepPolicy(last=3)) == ids(s, [7, 8, 9])
    assert kept(s, KeepPolicy(last=30)) == ids(s, range(10))


def test_keep_hourly_keeps_the_newest_of_each_hour():
    s = snaps_at(
        local(2031, 1, 1, 10, 5),
        local(2031, 1, 1, 10, 50),
        local(2031, 1, 1, 11, 1),
        local(2031, 1, 1, 11, 59),
        local(2031, 1, 1, 13, 0),
    )
    assert kept(s, KeepPolicy(hourly=3)) == ids(s, [1, 3, 4])


def test_keep_daily_keeps_the_newest_of_each_day():
    times = [local(2031, 1, d, h) for d in (1, 2, 3, 5, 6) for h in (8, 12, 20)]
    s = snaps_at(*times)
    # newest of 2031-01-06, -05, -03
    assert kept(s, KeepPolicy(daily=3)) == ids(s, [14, 11, 8])


def test_keep_weekly_uses_iso_weeks():
    # 2031-01-05 is a Sunday, 2031-01-06 a Monday (a new ISO week)
    s = snaps_at(local(2031, 1, 4), local(2031, 1, 5), local(2031, 1, 6), local(2031, 1, 12), local(2031, 1, 13))
    assert kept(s, KeepPolicy(weekly=2)) == ids(s, [4, 3])
    assert kept(s, KeepPolicy(weekly=3)) == ids(s, [4, 3, 1])


def test_keep_monthly_and_yearly():
    s = snaps_at(
        local(2029, 12, 31),
        local(2030, 1, 1),
        local(2030, 1, 20),
        local(2030, 6, 1),
        local(2030, 12, 31),
        local(2031, 1, 2),
    )
    assert kept(s, KeepPolicy(monthly=3)) == ids(s, [5, 4, 3])
    assert kept(s, KeepPolicy(yearly=2)) == ids(s, [5, 4])
    both = apply(s, KeepPolicy(monthly=1, yearly=3), NOW)
    assert set(both) == ids(s, [5, 4, 0])
    assert both[s[5].id] == ["monthly snapshot", "yearly snapshot"]


def test_rules_add_up():
    s = snaps_at(*(local(2031, 1, d) for d in range(1, 11)))
    assert kept(s, KeepPolicy(last=2, daily=4)) == ids(s, [9, 8, 7, 6])
    assert kept(s, KeepPolicy(last=1, weekly=2)) == ids(s, [9, 4])  # s[4] is Sunday 2031-01-05


def test_keep_within_is_relative_to_the_newest_snapshot():
    """restic: --keep-within keeps snapshots newer than DURATION before the *latest snapshot*,
    so a host that stopped backing up does not lose its history to the calendar."""
    day = dt.timedelta(days=1)
    base = dt.datetime(2031, 1, 1, 12, tzinfo=UTC)
    s = snaps_at(*(base + i * day for i in range(10)))  # days 0..9
    now = base + 40 * day  # backups stopped a month ago
    assert kept(s, KeepPolicy(within=3 * day), now) == ids(s, [7, 8, 9])


def test_keep_within_when_backups_are_current():
    day = dt.timedelta(days=1)
    base = dt.datetime(2031, 1, 1, 12, tzinfo=UTC)
    s = snaps_at(*(base + i * day for i in range(10)))
    now = base + 9 * day + dt.timedelta(minutes=5)
    assert kept(s, KeepPolicy(within=dt.timedelta(days=2, hours=12)), now) == ids(s, [7, 8, 9])


# -- a reference model of restic's ApplyPolicy (restic ≥ 0.17) -----------------------------

_BUCKERS = (
    ("last", lambda t, nr: nr),
    ("hourly", lambda t, nr: (t.year, t.month, t.day, t.hour)),
    ("daily", lambda t, nr: (t.year, t.month, t.day)),
    ("weekly", lambda t, nr: t.isocalendar()[:2]),
    ("monthly", lambda t, nr: (t.year, t.month)),
    ("yearly", lambda t, nr: (t.year,)),
)


def restic_keep(snaps, policy: KeepPolicy, now) -> set[str]:
    """Newest first; each rule keeps a snapshot whose bucket differs from the last kept one,
    and also the oldest snapshot while the rule still has counts left."""
    ordered = sorted(snaps, key=lambda s: (s.time, s.id), reverse=True)
    latest = max((s.time for s in ordered if s.time < now), default=None)
    counts = {name: getattr(policy, name) for name, _ in _BUCKERS}
    last = {name: None for name, _ in _BUCKERS}
    keep = set()
    for nr, cur in enumerate(ordered):
        if policy.within is not None and latest is not None and cur.time > latest - policy.within:
            keep.add(cur.id)
        for name, bucker in _BUCKERS:
            if counts[name] > 0:
                val = bucker(cur.time.astimezone(), nr)
                if val != last[name] or nr == len(ordered) - 1:
                    keep.add(cur.id)
                    last[name] = val
                    counts[name] -= 1
    return keep


_times = st.lists(
    st.datetimes(min_value=dt.datetime(2028, 1, 1), max_value=dt.datetime(2031, 5, 1), timezones=st.just(UTC)),
    min_size=0,
    max_size=40,
)
_counts = st.integers(0, 6)
_policies = st.builds(
    KeepPolicy, last=_counts, hourly=_counts, daily=_counts, weekly=_counts, monthly=_counts, yearly=_counts
)


@settings(max_examples=300, deadline=None)
@given(times=_times, policy=_policies)
def test_kept_is_a_subset_and_every_kept_snapshot_has_a_reason(times, policy):
    s = snaps_at(*times)
    reasons = apply(s, policy, NOW)
    assert set(reasons) <= {x.id for x in s}
    assert all(reasons[k] for k in reasons)


@settings(max_examples=300, deadline=None)
@given(times=_times, n=st.integers(0, 45))
def test_keep_last_n_keeps_exactly_the_n_newest(times, n):
    s = snaps_at(*times)
    newest = sorted(s, key=lambda x: (x.time, x.id), reverse=True)[:n]
    assert kept(s, KeepPolicy(last=n)) == {x.id for x in newest}


@settings(max_examples=200, deadline=None)
@given(times=_times, policy=_policies, rule=st.sampled_from(["last", "hourly", "daily", "weekly", "monthly", "yearly"]))
def test_a_larger_count_never_keeps_less(times, policy, rule):
    from dataclasses import replace

    s = snaps_at(*times)
    more = replace(policy, **{rule: getattr(policy, rule) + 1})
    assert kept(s, policy) <= kept(s, more)


@settings(max_examples=200, deadline=None)
@given(times=_times, n=st.integers(1, 6), rule=st.sampled_from(["hourly", "daily", "weekly", "monthly", "yearly"]))
def test_a_bucket_rule_keeps_at_most_its_count(times, n, rule):
    s = snaps_at(*times)
    assert len(kept(s, KeepPolicy(**{rule: n}))) <= n


@settings(max_examples=300, deadline=None)
@given(times=_times, policy=_policies)
@example(  # two days, keep-daily 3: restic keeps the oldest snapshot too, a count is left
    times=[
        dt.datetime(2031, 1, 1, 1, tzinfo=UTC),
        dt.datetime(2031, 1, 1, 2, tzinfo=UTC),
        dt.datetime(2031, 1, 2, 1, tzinfo=UTC),
        dt.datetime(2031, 1, 2, 2, tzinfo=UTC),
    ],
    policy=KeepPolicy(daily=3),
)
def test_apply_matches_restic(times, policy):
    s = snaps_at(*times)
    assert kept(s, policy) == restic_keep(s, policy, NOW)
