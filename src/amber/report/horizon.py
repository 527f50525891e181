"""The lock horizon: how much stays protected at each future date. Pure: times are passed in.

A snapshot is protected at a date while its lock lasts past that date, or while it is on
legal hold (a hold has no end date: it lasts until someone releases it). The horizon is
sampled at the start of equal buckets from now until one past the latest lock expiry, the
bucket chosen so that there are at most about sixty of them.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass

from ..clock import to_iso

DAY = _dt.timedelta(days=1)
# (name, length of one bucket, the longest span it is used for)
GRANULARITIES = (
    ("day", DAY, 62 * DAY),
    ("week", 7 * DAY, 62 * 7 * DAY),
    ("month", 30 * DAY, 62 * 30 * DAY),
    ("quarter", 91 * DAY, 62 * 91 * DAY),
)
YEAR = ("year", 365 * DAY)


@dataclass(frozen=True, slots=True)
class Protected:
    """One snapshot as the horizon sees it."""

    id: str
    until: _dt.datetime | None  # the end of its lock, None when it never had one
    held: bool
    bytes: int


def granularity(span: _dt.timedelta) -> tuple[str, _dt.timedelta]:
    """The bucket for a horizon of `span`: the finest that needs no more than 62 buckets."""
    for name, step, longest in GRANULARITIES:
        if span <= longest:
            return name, step
    return YEAR


def horizon(snaps: Iterable[Protected], now: _dt.datetime) -> dict:
    """The horizon as the report shows it: the latest expiry, and per bucket how many snapshots
    (and bytes) are still protected at its start, how many by a lock and by a hold, and how many
    locks end within it."""
    snaps = list(snaps)
    ends = [s.until for s in snaps if s.until is not None and s.until > now]
    latest = max(ends, default=None)
    name, step = granularity((latest - now) if latest is not None else DAY)
    buckets = []
    start = now
    while True:
        end = start + step
        locked = [s for s in snaps if s.until is not None and s.until > start]
        protected = [s for s in snaps if s.held or (s.until is not None and s.until > start)]
        buckets.append(
            {
                "date": to_iso(start.replace(microsecond=0)),
                "snapshots": len(protected),
                "bytes": sum(s.bytes for s in protected),
                "locked": len(locked),
                "held": sum(1 for s in snaps if s.held),
                "locks_ending": sum(1 for s in locked if s.until is not None and s.until <= end),
            }
        )
        if latest is None or start > latest:
            break  # the last bucket starts after every lock has ended: what the holds keep
        start = end
    return {
        "now": to_iso(now.replace(microsecond=0)),
        "latest_expiry": to_iso(latest) if latest is not None else None,
        "latest_expiry_snapshot": next((s.id for s in snaps if s.until == latest), None) if latest else None,
        "granularity": name,
        "locked_now": len(ends),
        "held_now": sum(1 for s in snaps if s.held),
        "unprotected_now": sum(1 for s in snaps if not s.held and (s.until is None or s.until <= now)),
        "buckets": buckets,
    }
