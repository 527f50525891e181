"""Refuse to delete what a moved clock would expire early.

Locks expire by the clock of the process that judges them, and moving that
clock needs no privilege (an LD_PRELOAD tool such as faketime will do). So
before anything is deleted the current time is compared with the trusted
time T: the newest time the repository has recorded (snapshot times, lock
event times, the audit log's events) or this client has seen.

- A clock behind T (beyond a small tolerance) went backwards: nothing is
  deleted.
- A clock ahead of T by more than the window W (plus the same tolerance)
  jumped forward, unwitnessed by any write. W is never longer than the shortest lock active at T (and at
  most 31 days): a jump longer than that lock could expire it without anyone
  noticing. What was locked until a time inside the jump is not deleted;
  what expired before T, or was never locked, is.
- A jump already in the record (a backup or any other event made with a
  moved clock, seen as a gap longer than the window between two events of
  the audit log, or recorded as `clock_jump` by a backup) blocks deletion the
  same way, until an event with `trust_clock` confirms it.

`trust_clock` overrides all of this after an administrator checked the clock;
the deleting event records it and the jumps it confirmed. Overrides of the
clock and of governance are listed by `check` and shown by `snapshots`
(`overrides`). What remains possible: see docs/THREAT-MODEL.md §6.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ..audit.log import AuditLog
from ..audit.summary import event_grant
from ..clock import Clock, from_iso, to_iso
from ..errors import Locked
from ..repo import client_state
from ..repo.snapshots import Snapshot

TOLERANCE = _dt.timedelta(minutes=10)
MAX_WINDOW = _dt.timedelta(days=31)

Entries = list[tuple[dict, bytes]]  # the audit log's readable entries: (event, canonical bytes)


class Recorded(Protocol):
    """What holds the record of time: snapshots, lock records, the audit log."""

    audit: AuditLog

    def snapshots(self, *, tags=(), hosts=(), paths=()) -> list[Snapshot]: ...

    def events(self) -> dict[str, list[dict]]: ...


class Guarded(Recorded, Protocol):
    """What the clock guard compares the clock with: the record, and this client's memory."""

    clock: Clock

    @property
    def id(self) -> str: ...


@dataclass(frozen=True)
class Jump:
    """A forward step of the clock longer than the window: (start, end], unwitnessed."""

    start: _dt.datetime
    end: _dt.datetime
    window: _dt.timedelta
    seq: int | None = None  # the log event that recorded or closed it; None: the clock now

    def covers(self, t: _dt.datetime) -> bool:
        return self.start < t <= self.end

    def to_json(self) -> dict:
        return {"from": to_iso(self.start), "to": to_iso(self.end)}

    def describe(self) -> str:
        where = "" if self.seq is None else f" (event {self.seq})"
        return (
            f"a clock jump of {span(self.end - self.start)} from {to_iso(self.start)} to {to_iso(self.end)}"
            f"{where}, longer than the {span(self.window)} the locks active before it allow"
        )


@dataclass(frozen=True)
class Grant:
    """One lock as it was set: when, and until when."""

    set: _dt.datetime
    until: _dt.datetime


@dataclass(frozen=True)
class Assessment:
    """What the guard found: the clock, the trusted times, and every unconfirmed jump."""

    now: _dt.datetime
    newest: _dt.datetime | None  # the repository's newest record
    seen: _dt.datetime | None  # this client's remembered time
    jumps: list[Jump]


# -- reading the record ----------------------------------------------------------------


def span(d: _dt.timedelta) -> str:
    """A length of time as a person reads it: 8 days, 5 hours, 12 minutes."""
    s = int(d.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if s >= size:
            n = round(s / size, 1)
            n = int(n) if n == int(n) else n
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{s} seconds"


def _time(value: object) -> _dt.datetime | None:
    try:
        return from_iso(value) if isinstance(value, str) else None
    except (ValueError, OverflowError):
        return None


def _span_of(cj: object) -> tuple[_dt.datetime | None, _dt.datetime | None]:
    """(from, to) of a recorded `{"from": ISO, "to": ISO}`."""
    return (_time(cj.get("from")), _time(cj.get("to"))) if isinstance(cj, dict) else (None, None)


def _details(ev: dict) -> dict:
    d = ev.get("details")
    return d if isinstance(d, dict) else {}


def log_entries(repo: Recorded) -> Entries:
    """The audit log's readable entries that it honours (damage and events it does not honour
    are reported by `audit verify` and `check`)."""
    return repo.audit.honoured(errors=[])


def grants(snaps: Iterable[Snapshot], events: Mapping[str, list[dict]], entries: Entries) -> list[Grant]:
    """Every lock ever set, from the snapshots, the lock records and the audit log."""
    found: list[tuple[_dt.datetime | None, _dt.datetime | None]] = []
    for s in snaps:
        if isinstance(s.retention, dict):
            found.append((s.time, _time(s.retention.get("until"))))
    for evs in events.values():
        found.extend((_time(ev.get("time")), _time(ev.get("until"))) for ev in evs if ev.get("type") == "lock")
    found.extend(g for ev, _raw in entries if (g := event_grant(ev)) is not None)
    return [Grant(start, end) for start, end in found if start is not None and end is not None and end > start]


def window(locks: list[Grant], at: _dt.datetime) -> _dt.timedelta:
    """The forward window at `at`: the length of the shortest lock active then, at most 31 days.
    A lock set up to TOLERANCE after `at` counts too (clients' clocks differ a little)."""
    lengths = [g.until - g.set for g in locks if g.set - TOLERANCE <= at < g.until]
    return min([MAX_WINDOW, *lengths])


@dataclass(frozen=True)
class Logged:
    """A jump as the audit log shows it: the event that recorded or closed it, and whether a
    later (or the same) event with `trust_clock` confirmed it."""

    jump: Jump
    event: dict
    confirmed: bool


def log_jumps(entries: Entries, locks: list[Grant]) -> list[Logged]:
    """Every jump in the audit log: a gap between an event and the newest before it longer
    than the window then, or a `clock_jump` an event recorded. An event with `trust_clock`
    confirms every jump before it and its own."""
    shortest = min([MAX_WINDOW, *(g.until - g.set for g in locks)])
    found: list[tuple[Jump, dict]] = []
    confirmed_upto = 0
    newest: _dt.datetime | None = None
    for ev, _raw in entries:
        t = _time(ev.get("time"))
        if t is None:
            continue
        d = _details(ev)
        seq = ev.get("seq") if isinstance(ev.get("seq"), int) else None
        if newest is not None and t - newest > shortest + TOLERANCE:
            w = window(locks, newest)
            if t - newest > w + TOLERANCE:
                found.append((Jump(newest, t, w, seq), ev))
        start, end = _span_of(d.get("clock_jump"))
        if start is not None and end is not None and end > start:
            found.append((Jump(start, end, window(locks, start), seq), ev))
        if d.get("trust_clock") is True:
            confirmed_upto = len(found)
        newest = t if newest is None else max(newest, t)
    return [Logged(j, ev, i < confirmed_upto) for i, (j, ev) in enumerate(found)]


def newest_logged(entries: Entries) -> _dt.datetime | None:
    times = [t for ev, _raw in entries if (t := _time(ev.get("time"))) is not None]
    return max(times) if times else None


def newest_recorded(repo: Recorded, entries: Entries | None = None) -> _dt.datetime | None:
    """The newest time in the repository: snapshots, lock records, audit log events."""
    times = [s.time for s in repo.snapshots()]
    for evs in repo.events().values():
        times.extend(t for ev in evs if (t := _time(ev.get("time"))) is not None)
    logged = newest_logged(log_entries(repo) if entries is None else entries)
    if logged is not None:
        times.append(logged)
    return max(times) if times else None


def assess(repo: Guarded) -> Assessment:
    """The clock against the record: every unconfirmed jump, the one now included."""
    now = repo.clock.now()
    entries = log_entries(repo)
    locks = grants(repo.snapshots(), repo.events(), entries)
    jumps = [lj.jump for lj in log_jumps(entries, locks) if not lj.confirmed]
    newest, seen = newest_recorded(repo, entries), remembered(repo)
    trusted = max((t for t in (newest, seen) if t is not None), default=None)
    if trusted is not None and now - trusted > (w := window(locks, trusted)) + TOLERANCE:
        jumps.append(Jump(trusted, now, w))
    return Assessment(now, newest, seen, jumps)


def current_jump(repo: Guarded) -> Jump | None:
    """The jump from the trusted time to now, if it is longer than the window (for a backup to
    record what it was made under). The log is read through this client's summary of it
    (audit/summary.py): only the events added since its last use."""
    now = repo.clock.now()
    logged = repo.audit.summary()
    locks = grants(repo.snapshots(), repo.events(), []) + [Grant(a, b) for a, b in logged.grants]
    newest = max((t for t in (newest_recorded(repo, []), logged.newest) if t is not None), default=None)
    seen = remembered(repo)
    trusted = max((t for t in (newest, seen) if t is not None), default=None)
    if trusted is not None and now - trusted > (w := window(locks, trusted)) + TOLERANCE:
        return Jump(trusted, now, w)
    return None


# -- this client's memory ------------------------------------------------------------


def state_path(repo: Guarded) -> str:
    return client_state.state_file(repo.id, "clock.json")


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


# -- the guard -------------------------------------------------------------------------


def check_before_delete(
    repo: Guarded, expiring: Mapping[str, _dt.datetime | None] | None = None, trust_clock: bool = False
) -> dict:
    """Refuse (Locked, remedy trust-clock) when the clock went backwards, or when anything in
    `expiring` (what is about to be deleted -> when its lock ended, None if never locked) was
    locked until a time inside an unconfirmed jump. Returns the fields the deleting event
    records: `trust_clock`, and with it the jumps it confirms."""
    a = assess(repo)
    if not trust_clock:
        _refuse_backwards(a)
        _refuse_expired_in_jump(a, expiring or {})
    remember(repo, a.now)
    out: dict = {"trust_clock": bool(trust_clock)}
    if trust_clock and a.jumps:
        out["clock_jumps"] = [j.to_json() for j in a.jumps]
    return out


def _refuse_backwards(a: Assessment) -> None:
    for what, t in (("the repository's newest record", a.newest), ("this client's last use", a.seen)):
        if t is not None and a.now < t - TOLERANCE:
            raise Locked(
                f"the clock ({to_iso(a.now)}) is behind {what} ({to_iso(t)}): refusing to "
                "delete anything until the clock is checked",
                remedy="trust-clock",
            )


def _refuse_expired_in_jump(a: Assessment, expiring: Mapping[str, _dt.datetime | None]) -> None:
    refusals = []
    for name, until in expiring.items():
        jump = next((j for j in a.jumps if until is not None and j.covers(until)), None)
        if jump is not None:
            refusals.append(f"{name} was locked until {to_iso(until)}, inside {jump.describe()}")  # type: ignore[arg-type]
    if refusals:
        raise Locked(
            "refusing to delete what a clock moved forward would have unlocked early: "
            + _listed(refusals, "; ")
            + ". Nothing was deleted; an administrator who checked the clock may confirm it",
            remedy="trust-clock",
        )


# -- overrides: what `check` and `snapshots` show ------------------------------------------

_FLAGS = (("bypass-governance", "bypass_governance"), ("trust-clock", "trust_clock"))


@dataclass(frozen=True)
class Override:
    """One --bypass-governance or --trust-clock, or one event made under a clock jump."""

    kind: str  # "bypass-governance", "trust-clock" or "clock-jump"
    type: str  # the event's type: forget, lock, prune, snapshot, ...
    snapshot: str | None
    event: int | None  # its position in the audit log
    record: str | None = None  # the lock record that shows it, when the audit log does not
    jumps: tuple[Jump, ...] = ()
    confirmed: bool = True

    def describe(self) -> str:
        where = f"event {self.event}" if self.event is not None else f"lock record {self.record} (not in the audit log)"
        of = f" of {self.snapshot[:8]}" if self.snapshot else ""
        if self.kind == "clock-jump":
            j = self.jumps[0]
            what = "backup" if self.type == "snapshot" else self.type
            return (
                f"{where} {what}{of} made under a clock jump of {span(j.end - j.start)} from "
                f"{to_iso(j.start)} to {to_iso(j.end)} ({'confirmed' if self.confirmed else 'not confirmed'})"
            )
        confirming = ", ".join(f"{to_iso(j.start)} → {to_iso(j.end)}" for j in self.jumps)
        return f"{where} {self.type} --{self.kind}{of}" + (
            f" (confirmed clock jumps {confirming})" if confirming else ""
        )

    def to_json(self) -> dict:
        out: dict = {"kind": self.kind, "type": self.type, "event": self.event, "description": self.describe()}
        if self.record is not None:
            out["record"] = self.record
        if self.kind == "clock-jump":
            out.update(self.jumps[0].to_json(), confirmed=self.confirmed)
        elif self.jumps:
            out["clock_jumps"] = [j.to_json() for j in self.jumps]
        return out


def _snapshot_of(ev: dict) -> str | None:
    sid = ev.get("snapshot")
    return sid if isinstance(sid, str) else None


def _confirmed(d: dict) -> tuple[Jump, ...]:
    """The jumps a --trust-clock event says it confirmed."""
    cjs = d.get("clock_jumps")
    found = (_span_of(cj) for cj in (cjs if isinstance(cjs, list) else ()))
    return tuple(Jump(s, e, _dt.timedelta(0)) for s, e in found if s is not None and e is not None)


def overrides(entries: Entries, events: Mapping[str, list[dict]], locks: list[Grant]) -> list[Override]:
    """Every --bypass-governance and --trust-clock in the audit log, then those only a lock
    record shows, then every event made under a clock jump (one per event)."""
    out: list[Override] = []
    logged = set()
    for ev, _raw in entries:
        d = _details(ev)
        for kind, flag in _FLAGS:
            if d.get(flag) is True:
                sid, kind_type = _snapshot_of(ev), str(ev.get("type"))
                jumps = _confirmed(d) if kind == "trust-clock" else ()
                out.append(Override(kind, kind_type, sid, ev.get("seq"), jumps=jumps))
                logged.add((kind, kind_type, sid))
    for sid, evs in sorted(events.items()):
        for ev in evs:
            for kind, flag in _FLAGS:
                if ev.get(flag) is True and (kind, str(ev.get("type")), sid) not in logged:
                    key = f"locks/{sid}/{ev.get('id', '?')}"
                    out.append(Override(kind, str(ev.get("type")), sid, None, record=key))
    seen: set = set()
    for lj in log_jumps(entries, locks):
        seq = lj.event.get("seq")
        if seq not in seen:
            seen.add(seq)
            kind_type = str(lj.event.get("type"))
            out.append(Override("clock-jump", kind_type, _snapshot_of(lj.event), seq, None, (lj.jump,), lj.confirmed))
    return out


def repository_overrides(repo: Recorded) -> list[Override]:
    entries = log_entries(repo)
    events = repo.events()
    return overrides(entries, events, grants(repo.snapshots(), events, entries))


def override_warnings(repo: Recorded) -> list[str]:
    """What `check` reports: the overrides with a count, and the jumps still unconfirmed."""
    found = repository_overrides(repo)
    flags = [o for o in found if o.kind != "clock-jump"]
    open_jumps = [o for o in found if o.kind == "clock-jump" and not o.confirmed]
    out = []
    if flags:
        out.append(f"{len(flags)} override(s): " + _listed([o.describe() for o in flags]))
    if open_jumps:
        out.append(
            f"{len(open_jumps)} unconfirmed clock jump(s): "
            + _listed([o.describe() for o in open_jumps])
            + "; deleting anything locked until a time inside one needs --trust-clock"
        )
    return out


def _listed(items: list[str], sep: str = ", ", most: int = 20) -> str:
    """The first `most` items, then how many more: a message stays readable however many."""
    return sep.join(items[:most]) + (f"{sep}… {len(items) - most} more" if len(items) > most else "")


def snapshot_overrides(repo: Recorded) -> dict[str, list[Override]]:
    """snapshot id -> the overrides that touched it: a lock shortened with --bypass-governance,
    a backup made or a lock set under a clock jump."""
    out: dict[str, list[Override]] = {}
    for o in repository_overrides(repo):
        if o.snapshot is not None and o.type in ("snapshot", "lock", "unlock"):
            out.setdefault(o.snapshot, []).append(o)
    return out
