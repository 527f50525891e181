"""Keep policies (pure): which snapshots `forget --keep-*` keeps, as restic decides."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KeepPolicy:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: _dt.timedelta | None = None

    def empty(self) -> bool:
        return not (self.last or self.hourly or self.daily or self.weekly or self.monthly or self.yearly or self.within)


_BUCKETS = (
    ("last", lambda t, nr: nr),
    ("hourly", lambda t, nr: (t.year, t.month, t.day, t.hour)),
    ("daily", lambda t, nr: (t.year, t.month, t.day)),
    ("weekly", lambda t, nr: t.isocalendar()[:2]),
    ("monthly", lambda t, nr: (t.year, t.month)),
    ("yearly", lambda t, nr: (t.year,)),
)
_REASON = {
    "last": "last snapshot",
    "hourly": "hourly snapshot",
    "daily": "daily snapshot",
    "weekly": "weekly snapshot",
    "monthly": "monthly snapshot",
    "yearly": "yearly snapshot",
}


def apply_first(snaps: list, policy: KeepPolicy, now: _dt.datetime) -> dict[str, list[str]]:
    """`apply` for a repository with a lock policy (retention/tiers.py): per UTC hour, day, ISO
    week, month and year the **first** snapshot of the period is the one kept (restic keeps the
    newest), for the newest N periods of each rule — the snapshots the policy locked. `last` and
    `within` are as in `apply`."""
    reasons = (
        {
            sid: [r for r in why if r in ("within", _REASON["last"])]
            for sid, why in apply(snaps, KeepPolicy(last=policy.last, within=policy.within), now).items()
        }
        if (policy.last or policy.within)
        else {}
    )
    for name, bucket in _BUCKETS[1:]:
        count = getattr(policy, name)
        if count <= 0:
            continue
        first: dict[tuple, Any] = {}
        for s in sorted(snaps, key=lambda s: (s.time, s.id)):
            first.setdefault(bucket(s.time.astimezone(_dt.UTC), 0), s)
        for period in sorted(first, reverse=True)[:count]:
            reasons.setdefault(first[period].id, []).append(_REASON[name])
    return {sid: why for sid, why in reasons.items() if why}


def apply(snaps: list, policy: KeepPolicy, now: _dt.datetime) -> dict[str, list[str]]:
    """id -> reasons to keep, for the snapshots kept; the others are to be removed.

    As restic (0.17 and later) decides: newest first, each rule with counts
    left keeps a snapshot whose hour/day/week/month/year (in local time)
    differs from the last one it kept, and keeps the oldest snapshot too while
    it still has counts left. `within` counts back from the newest snapshot,
    not from now, so a host that stopped backing up keeps its last ones.
    Each item of `snaps` needs `.id` and `.time`.
    """
    ordered = sorted(snaps, key=lambda s: (s.time, s.id), reverse=True)
    latest = max((s.time for s in ordered if s.time < now), default=None)
    counts = {name: getattr(policy, name) for name, _ in _BUCKETS}
    last: dict[str, object] = {name: None for name, _ in _BUCKETS}
    reasons: dict[str, list[str]] = {}
    for nr, s in enumerate(ordered):
        if policy.within is not None and latest is not None and s.time > latest - policy.within:
            reasons.setdefault(s.id, []).append("within")
        local = s.time.astimezone()
        for name, bucket in _BUCKETS:
            if counts[name] <= 0:
                continue
            value = bucket(local, nr)
            if value != last[name] or nr == len(ordered) - 1:
                reasons.setdefault(s.id, []).append(_REASON[name])
                last[name] = value
                counts[name] -= 1
    return reasons
