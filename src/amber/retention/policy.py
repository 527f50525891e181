"""Keep policies (pure): which snapshots `forget --keep-*` keeps, as restic decides."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass


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
