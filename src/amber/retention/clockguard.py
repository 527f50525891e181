"""Refuse to delete when the clock cannot be trusted.

Locks expire by the clock, so an attacker who moves the clock forward could
expire them early, and a clock set back could make a repository look older
than it is. Before anything is deleted, the current time is compared with
the newest time the repository has recorded (snapshot times, event times,
object modification times where the backend reports them) and with the
newest time this client has seen for this repository:

- a clock behind either of those (beyond a small tolerance) went backwards;
- a clock far ahead of the repository's newest record jumped forward: the
  time locks expire by has not been witnessed by any write.

Both refuse deletion until an administrator checks the clock and confirms
with `trust_clock` (recorded in the event). A purely local repository cannot
do better against root on its own machine: see docs/THREAT-MODEL.md.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Protocol

from ..clock import Clock, from_iso, to_iso
from ..errors import Locked
from ..repo import client_state
from ..repo.snapshots import Snapshot

TOLERANCE = _dt.timedelta(minutes=10)
MAX_JUMP = _dt.timedelta(days=31)


class Guarded(Protocol):
    """What the clock guard compares the clock with."""

    clock: Clock

    @property
    def id(self) -> str: ...

    def snapshots(self, *, tags=(), hosts=()) -> list[Snapshot]: ...

    def events(self) -> dict[str, list[dict]]: ...


def state_path(repo: Guarded) -> str:
    return client_state.state_file(repo.id, "clock.json")


def newest_recorded(repo: Guarded) -> _dt.datetime | None:
    times = [s.time for s in repo.snapshots()]
    for evs in repo.events().values():
        for ev in evs:
            try:
                times.append(from_iso(ev["time"]))
            except (KeyError, ValueError, TypeError):
                continue
    return max(times) if times else None


def remembered(repo: Guarded) -> _dt.datetime | None:
    try:
        with open(state_path(repo)) as f:
            return from_iso(json.load(f)["seen"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember(repo: Guarded, now: _dt.datetime) -> None:
    seen = remembered(repo)
    if seen is not None and seen >= now:
        return
    path = state_path(repo)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"seen": to_iso(now)}, f)
        os.replace(tmp, path)
    except OSError:
        pass


def check_before_delete(repo: Guarded, trust_clock: bool = False) -> None:
    now = repo.clock.now()
    newest = newest_recorded(repo)
    seen = remembered(repo)
    if not trust_clock:
        for what, t in (("the repository's newest record", newest), ("this client's last use", seen)):
            if t is not None and now < t - TOLERANCE:
                raise Locked(
                    f"the clock ({to_iso(now)}) is behind {what} ({to_iso(t)}): refusing to "
                    "delete anything until the clock is checked",
                    remedy="trust-clock",
                )
        if newest is not None and now > newest + MAX_JUMP:
            raise Locked(
                f"the clock ({to_iso(now)}) is more than {MAX_JUMP.days} days ahead of the "
                f"repository's newest record ({to_iso(newest)}): a clock moved forward would "
                "expire locks early, so nothing is deleted until the clock is checked",
                remedy="trust-clock",
            )
    remember(repo, now)
