"""Time is passed in, so tests can move it without sleeping."""
from __future__ import annotations

import datetime as _dt
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> _dt.datetime:
        """The current time, timezone-aware UTC."""


class SystemClock:
    def now(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(time.time(), _dt.timezone.utc)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: _dt.datetime | None = None) -> None:
        self._now = start or _dt.datetime(2030, 1, 1, tzinfo=_dt.timezone.utc)

    def now(self) -> _dt.datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += _dt.timedelta(seconds=seconds)


def to_iso(t: _dt.datetime) -> str:
    """ISO 8601 UTC with microseconds when present, 'Z' suffix."""
    t = t.astimezone(_dt.timezone.utc)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond:06d}"
    return text + "Z"


def from_iso(text: str) -> _dt.datetime:
    t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.astimezone(_dt.timezone.utc)
