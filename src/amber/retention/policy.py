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
        return not (self.last or self.hourly or self.daily or self.weekly or self.monthly
                    or self.yearly or self.within)


_BUCKETS = (
    ("hourly", lambda t: (t.year, t.month, t.day, t.hour)),
    ("daily", lambda t: (t.year, t.month, t.day)),
    ("weekly", lambda t: t.isocalendar()[:2]),
    ("monthly", lambda t: (t.year, t.month)),
    ("yearly", lambda t: (t.year,)),
)


def apply(snaps: list, policy: KeepPolicy, now: _dt.datetime) -> dict[str, list[str]]:
    """id -> reasons to keep, for the snapshots kept; the others are to be removed.

    Each `snaps` item needs `.id` and `.time`. Within each rule, newest first,
    the first snapshot of each new hour/day/week/month/year is kept until that
    rule has kept its count.
    """
    ordered = sorted(snaps, key=lambda s: (s.time, s.id), reverse=True)
    reasons: dict[str, list[str]] = {}
    for i, s in enumerate(ordered):
        if i < policy.last:
            reasons.setdefault(s.id, []).append("last snapshot")
        if policy.within is not None and s.time >= now - policy.within:
            reasons.setdefault(s.id, []).append("within")
    for name, bucket in _BUCKETS:
        count = getattr(policy, name)
        if not count:
            continue
        seen = None
        kept = 0
        for s in ordered:
            b = bucket(s.time.astimezone())
            if b != seen:
                seen = b
                reasons.setdefault(s.id, []).append(f"{name} snapshot")
                kept += 1
                if kept >= count:
                    break
    return reasons
