"""Time is passed in, so tests can move it without sleeping; dates and durations as amber spells them.

Durations: 90s 15m 36h 30d 2w 6mo 7y; dates: ISO 8601.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from typing import Protocol

from .errors import UsageError


class Clock(Protocol):
    def now(self) -> _dt.datetime:
        """The current time, timezone-aware UTC."""


class SystemClock:
    def now(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(time.time(), _dt.UTC)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: _dt.datetime | None = None) -> None:
        self._now = start or _dt.datetime(2030, 1, 1, tzinfo=_dt.UTC)

    def now(self) -> _dt.datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += _dt.timedelta(seconds=seconds)


def to_iso(t: _dt.datetime) -> str:
    """ISO 8601 UTC with microseconds when present, 'Z' suffix."""
    t = t.astimezone(_dt.UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond:06d}"
    return text + "Z"


def from_iso(text: str) -> _dt.datetime:
    t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return t.astimezone(_dt.UTC)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w|mo|y)\s*$")


def add_duration(start: _dt.datetime, text: str) -> _dt.datetime:
    """`start` plus the duration; months and years are calendar months and years."""
    m = _RE.match(text or "")
    if not m:
        raise UsageError(f"invalid duration {text!r}: use e.g. 90s, 15m, 36h, 30d, 2w, 6mo, 7y")
    n, unit = int(m.group(1)), m.group(2)
    try:
        if unit in _UNITS:
            return start + _dt.timedelta(seconds=n * _UNITS[unit])
        months = n if unit == "mo" else 12 * n
        y, mo = divmod(start.month - 1 + months, 12)
        year, month = start.year + y, mo + 1
        day = min(start.day, _days_in_month(year, month))
        return start.replace(year=year, month=month, day=day)
    except (ValueError, OverflowError):
        raise UsageError(f"duration {text!r} reaches past the calendar") from None


def duration_seconds(text: str) -> float:
    """Length of a duration measured from the epoch (months and years approximate)."""
    epoch = _dt.datetime(2000, 1, 1, tzinfo=_dt.UTC)
    return (add_duration(epoch, text) - epoch).total_seconds()


def parse_date(text: str) -> _dt.datetime:
    try:
        t = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.UTC)
        return t.astimezone(_dt.UTC)
    except (ValueError, OverflowError):
        raise UsageError(f"invalid date {text!r}: use ISO 8601, e.g. 2031-01-01 or 2031-01-01T00:00:00Z") from None


def _days_in_month(year: int, month: int) -> int:
    nxt = _dt.date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - _dt.timedelta(days=1)).day
