"""Locks that follow the retention schedule (pure): a lock policy such as
"daily=14d,weekly=8w,monthly=13mo,yearly=7y" locks the first snapshot of each UTC day, ISO week,
month and year of a host for that tier's duration, and a snapshot filling several tiers gets the
longest. The first is the only choice a backup can make without knowing the future; `forget`
with a matching keep policy picks the same snapshot per period (policy.apply with `first`)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable

from ..clock import add_duration, duration_seconds
from ..errors import UsageError

TIERS = ("daily", "weekly", "monthly", "yearly")
PERIOD = {
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: t.isocalendar()[:2],
    "monthly": lambda t: (t.year, t.month),
    "yearly": lambda t: (t.year,),
}


def parse(text: str, mode: str | None) -> dict:
    """`{"tiers": {tier: duration}, "mode": ...}` from "daily=14d,weekly=8w,..." (UsageError if not)."""
    if not text or not text.strip():
        raise UsageError("--lock-policy is empty: give tiers such as daily=14d,weekly=8w,monthly=13mo,yearly=7y")
    tiers: dict[str, str] = {}
    for part in text.split(","):
        name, _, duration = part.strip().partition("=")
        if name not in TIERS or not duration:
            raise UsageError(f"--lock-policy: {part.strip()!r} is not one of {', '.join(TIERS)} = a duration")
        if name in tiers:
            raise UsageError(f"--lock-policy names {name} twice")
        duration_seconds(duration)  # UsageError for a bad duration
        tiers[name] = duration
    return {"tiers": tiers, "mode": mode or "governance"}


def not_shorter(new: dict, old: dict | None) -> str | None:
    """Why `new` may not replace `old` (a tier dropped or shortened, compliance given up), or None."""
    if old is None:
        return None
    for name, duration in old["tiers"].items():
        if name not in new["tiers"]:
            return f"the {name} tier ({duration}) cannot be removed"
        if duration_seconds(new["tiers"][name]) < duration_seconds(duration):
            return f"the {name} tier cannot be shortened from {duration} to {new['tiers'][name]}"
    if old["mode"] == "compliance" and new["mode"] != "compliance":
        return "a compliance lock policy cannot become governance"
    return None


def filled(time: _dt.datetime, earlier: Iterable[_dt.datetime], policy: dict) -> list[str]:
    """The tiers a snapshot taken at `time` fills: those whose UTC period holds no earlier snapshot."""
    t = time.astimezone(_dt.UTC)
    before = [e.astimezone(_dt.UTC) for e in earlier if e < time]
    return [
        name
        for name in TIERS
        if name in policy["tiers"] and not any(PERIOD[name](e) == PERIOD[name](t) for e in before)
    ]


def lock_for(time: _dt.datetime, tiers: list[str], policy: dict) -> tuple[str | None, _dt.datetime | None]:
    """(the longest tier filled, when its lock ends), or (None, None) when none is filled."""
    best: tuple[str | None, _dt.datetime | None] = (None, None)
    for name in tiers:
        until = add_duration(time, policy["tiers"][name])
        if best[1] is None or until > best[1]:
            best = (name, until)
    return best
