"""The audit log read for meaning: each snapshot's protection as the log alone tells it.

Lock records under `locks/` and the protection set in storage can be removed
or forged by a writer with storage rights; the log is sealed, hash-chained
and checkpointed. Replaying the log's `snapshot`, `lock`, `hold`, `release`
and `forget` events with the fold of `state` gives what each snapshot's
protection must be. `replay_problems` compares that with the lock records and
storage, and with what was forgotten when; `stricter` is what forget and
prune decide by, so removing lock records or planting a release record never
lets them delete what the log says is locked or held.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ..audit.authors import Authors
from ..audit.log import AuditLog
from ..audit.summary import load_kept, save_kept
from ..clock import from_iso, to_iso
from ..errors import NotFound
from ..format import layout
from ..repo.selection import tag_problem
from ..storage.base import COMPLIANCE, GOVERNANCE, Capabilities, ObjectInfo
from . import state
from .state import Protection

# a lock, hold or release record is written before its log event, by the same clock; a lock
# sets retention on every object the snapshot needs in between, which can take long
MATCH_WINDOW = _dt.timedelta(days=7)


class Logged(Protocol):
    audit: AuditLog


@dataclass
class LoggedSnapshot:
    """One snapshot as the log tells it."""

    sid: str
    tree: str | None = None  # from its snapshot event
    fold: state.Fold = state.EMPTY
    lock_seq: int | None = None  # the event that set the retention in force
    hold_seq: int | None = None  # the event that set the hold in force
    events: list = field(default_factory=list)  # (seq, time, type, details) of lock, hold, release

    @property
    def protection(self) -> Protection:
        return state.result(self.fold)

    def apply(self, seq: int, ev: dict) -> None:
        before = self.fold
        self.fold = state.step(self.fold, ev)
        if self.fold[0] != before[0]:
            self.lock_seq = seq
        if self.fold[1] and ev.get("type") == "hold":
            self.hold_seq = seq


@dataclass
class Replay:
    snapshots: dict[str, LoggedSnapshot] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, ev: dict) -> None:
        """One event folded in, in log order; each forget judged by the state before it."""
        sid, kind, at = ev.get("snapshot"), ev.get("type"), _time(ev)
        if not isinstance(sid, str) or at is None or kind not in ("snapshot", "lock", "hold", "release", "forget"):
            return  # entries are validated on read: this skips only what validation let through
        seq = ev.get("seq")
        d = ev.get("details") if isinstance(ev.get("details"), dict) else {}
        snap = self.snapshots.setdefault(sid, LoggedSnapshot(sid))
        if kind == "snapshot":
            snap.tree = d.get("tree")
            ret = d.get("retention")
            if isinstance(ret, dict):  # the snapshot's own lock, folded like a lock event
                snap.apply(seq, {"type": "lock", "mode": ret.get("mode"), "until": ret.get("until")})
        elif kind == "forget":
            _judge_forget(self, snap, seq, at, ev, d)
        else:
            snap.apply(seq, {**d, "type": kind})
            snap.events.append((seq, at, kind, d))


def replay(entries: Iterable[tuple[dict, bytes]]) -> Replay:
    """Fold every snapshot's events in log order, judging each forget by the state before it."""
    out = Replay()
    for ev, _raw in entries:
        out.add(ev)
    return out


@dataclass
class Meaning:
    """What the checks of the log's meaning need from every event, folded: the first event
    (does the log begin with the repository?), each snapshot's last `snapshot` and `forget`
    events, and the replay. The fold of events [0, size) of the log whose root is `root`;
    a client keeps it between runs (`AuditLog.kept_fold`), so `audit verify` from a
    remembered checkpoint reads only the events added since."""

    size: int = 0
    root: bytes = b""
    first: dict | None = None  # {"type", "time"} of event 0
    logged: dict[str, dict] = field(default_factory=dict)  # sid -> {"seq", "content_root", "tree"}
    forgotten: dict[str, int | None] = field(default_factory=dict)  # sid -> seq of its forget, its last word
    replayed: Replay = field(default_factory=Replay)
    # who may write what (format 2); without the log's origin no signature verifies, so a
    # Meaning made without it reports every signed event of a format-2 log, never trusts one
    authors: Authors = field(default_factory=lambda: Authors(""))

    @classmethod
    def of(cls, origin: str) -> Meaning:
        """The empty fold of the log whose origin is `origin` (`AuditLog.origin`)."""
        return cls(authors=Authors(origin))

    def add(self, ev: dict) -> None:
        """One event folded in. An event the log does not honour (audit/authors.py) is an
        error and changes nothing else: a snapshot it names is not logged, a forget or
        release it records not counted."""
        if self.first is None:
            self.first = {"type": ev.get("type"), "time": ev.get("time")}
        honoured, problem = self.authors.judge(ev)
        if problem is not None:
            self.replayed.errors.append(problem)
        if not honoured:
            return
        sid = ev.get("snapshot")
        if isinstance(sid, str):
            if ev.get("type") == "snapshot":
                d = ev.get("details") if isinstance(ev.get("details"), dict) else {}
                self.logged[sid] = {"seq": ev.get("seq"), "content_root": d.get("content_root"), "tree": d.get("tree")}
                self.forgotten.pop(sid, None)
            elif ev.get("type") == "forget":
                self.forgotten[sid] = ev.get("seq")
        if ev.get("type") == "tag":
            self._judge_tag(ev)
        self.replayed.add(ev)

    def _judge_tag(self, ev: dict) -> None:
        """A `tag` event that is malformed, or names a snapshot the log never recorded (in a log
        as old as the repository), changes no snapshot's tags: a warning says so."""
        problem = tag_problem(ev)
        sid = ev.get("snapshot")
        if problem is None and sid not in self.logged and self.log_start() is None:
            problem = f"event {ev.get('seq')} (tag, {ev.get('time')}) names a snapshot the log does not show: ignored"
        if problem is not None:
            self.replayed.warnings.append(problem)

    def log_start(self) -> _dt.datetime | None:
        """When the log began, for a log started by an upgrade (records older than it are not
        in it); None for a log as old as the repository."""
        if self.first is None or self.first.get("type") == "init":
            return None
        try:
            return from_iso(self.first["time"])
        except (KeyError, ValueError, TypeError):
            return None

    def to_json(self) -> dict:
        return {
            "v": 1,
            "size": self.size,
            "root": self.root.hex(),
            "first": self.first,
            "logged": self.logged,
            "forgotten": self.forgotten,
            "snapshots": [_snapshot_json(s) for s in self.replayed.snapshots.values()],
            "errors": self.replayed.errors,
            "warnings": self.replayed.warnings,
            "authors": self.authors.to_json(),
        }

    @classmethod
    def from_json(cls, doc: dict) -> Meaning:
        rp = Replay(
            {str(s["sid"]): _snapshot_from_json(s) for s in doc["snapshots"]},
            [str(e) for e in doc["errors"]],
            [str(w) for w in doc["warnings"]],
        )
        first = doc["first"]
        return cls(
            int(doc["size"]),
            bytes.fromhex(doc["root"]),
            dict(first) if first is not None else None,
            {str(k): dict(v) for k, v in doc["logged"].items()},
            {str(k): v for k, v in doc["forgotten"].items()},
            rp,
            Authors.from_json(doc["authors"]),
        )


def _snapshot_json(s: LoggedSnapshot) -> dict:
    ret, hold, reason = s.fold
    return {
        "sid": s.sid,
        "tree": s.tree,
        "fold": [[ret[0], to_iso(ret[1])] if ret else None, hold, reason],
        "lock_seq": s.lock_seq,
        "hold_seq": s.hold_seq,
        "events": [[seq, to_iso(at), kind, d] for seq, at, kind, d in s.events],
    }


def _snapshot_from_json(doc: dict) -> LoggedSnapshot:
    ret, hold, reason = doc["fold"]
    fold: state.Fold = ((str(ret[0]), from_iso(ret[1])) if ret else None, bool(hold), reason)
    events = [(seq, from_iso(at), str(kind), dict(d)) for seq, at, kind, d in doc["events"]]
    return LoggedSnapshot(str(doc["sid"]), doc["tree"], fold, doc["lock_seq"], doc["hold_seq"], events)


def load_meaning(path: str) -> Meaning | None:
    """The fold kept at `path`; None if there is none or it cannot be read (then it is rebuilt)."""
    return load_kept(path, Meaning.from_json)


def save_meaning(path: str, m: Meaning) -> None:
    save_kept(path, m.to_json())


def log_protections(entries: Iterable[tuple[dict, bytes]]) -> dict[str, Protection]:
    """snapshot id -> its protection as the audit log alone tells it."""
    return {sid: s.protection for sid, s in replay(entries).snapshots.items()}


def log_view(repo: Logged) -> dict[str, Protection]:
    """`log_protections` of the repository's readable log entries that the log honours."""
    return log_protections(repo.audit.honoured([]))


def protected_but_gone(entries: Iterable[tuple[dict, bytes]], stored: set[str], now: _dt.datetime) -> dict[str, str]:
    """snapshot id -> root tree of every snapshot the log says is locked or held now but whose
    document is not stored: prune keeps its data, whatever took the document away."""
    out = {}
    for sid, s in replay(entries).snapshots.items():
        p = s.protection
        if sid not in stored and s.tree is not None and (p.locked(now) or p.hold):
            out[sid] = s.tree
    return out


def stricter(a: Protection, b: Protection | None) -> Protection:
    """Locked if either is (the later end; compliance if either is), held if either is."""
    if b is None:
        return a
    untils = [p.until for p in (a, b) if p.until is not None]
    until = max(untils) if untils else None
    mode = None
    if until is not None:
        mode = COMPLIANCE if COMPLIANCE in (a.mode, b.mode) else GOVERNANCE
    held = a if a.hold else b
    return Protection(mode, until, held.hold, held.hold_reason)


def _judge_forget(out: Replay, snap: LoggedSnapshot, seq, at: _dt.datetime, ev: dict, d: dict) -> None:
    """A forget while held (no release logged before it), or before the end of the logged lock."""
    p = snap.protection
    what = f"snapshot {snap.sid[:8]} was forgotten (event {seq}, {ev['time']})"
    if p.hold:
        out.errors.append(f"{what} while held (event {snap.hold_seq}) with no release logged before it")
    if not p.locked(at):
        return
    lock = f"its {p.mode} lock until {to_iso(p.until)} (event {snap.lock_seq})"  # type: ignore[arg-type]  # locked
    if p.mode == GOVERNANCE and d.get("bypass_governance") is True:
        out.warnings.append(f"{what} before the end of {lock}, bypassing governance")
        snap.apply(seq, {"type": "unlock", "bypass_governance": True})  # lifted, as by an unlock
    else:
        out.errors.append(f"{what} before the end of {lock}")


# -- the log against the lock records and storage ----------------------------------------------


def replay_problems(
    meaning: Meaning,
    records: dict[str, list[dict]],
    stored: Iterable[str],
    stat: Callable[[str], ObjectInfo],
    capabilities: Capabilities,
    now: _dt.datetime,
    record_views: dict[str, Protection] | None = None,
) -> tuple[list[str], list[str]]:
    """(errors, warnings): forgets against the logged locks and holds; every logged lock and hold
    against its record under `locks/`; every release record against the log; every stored
    snapshot's storage protection against what the log gives it — with `record_views` (what the
    lock records say, where the caller checks storage against those itself), only for snapshots
    the log protects more than the records."""
    rp = meaning.replayed
    errors, warnings = list(rp.errors), list(rp.warnings)
    since = meaning.log_start()
    for sid in sorted(set(rp.snapshots) | set(records)):
        logged = rp.snapshots.get(sid, LoggedSnapshot(sid))
        errors += _records_against_log(sid, logged.events, records.get(sid, []), since)
    for sid in sorted(set(stored)):
        logged = rp.snapshots.get(sid)
        if logged is None:
            continue
        if record_views is not None and sid in record_views:
            rec = record_views[sid]
            if stricter(rec, logged.protection) == rec:
                continue  # the records ask as much: their own check covers storage
        errors += _storage_against_log(logged, stat, capabilities, now)
    return errors, warnings


def _records_against_log(sid: str, logged: list, recs: list[dict], since: _dt.datetime | None) -> list[str]:
    """Each logged lock and hold has its record; each release (or unlock) record has its event."""
    errors = []
    unmatched = [r for r in recs if r.get("type") in ("lock", "hold", "release", "unlock")]
    for seq, at, kind, d in logged:
        rec = _nearest(unmatched, at, lambda r, kind=kind, d=d: _same(r, kind, d))
        if rec is not None:
            unmatched.remove(rec)
        elif kind in ("lock", "hold"):
            errors.append(
                f"snapshot {sid[:8]}: the {kind} of event {seq} has no record under "
                f"{layout.LOCKS}{sid}/ (removed behind the log)"
            )
    for r in unmatched:
        if r.get("type") in ("release", "unlock") and not _predates(r, since):
            kind = r.get("type")
            errors.append(
                f"{layout.event(sid, r.get('id', '?'))}: {'an' if kind == 'unlock' else 'a'} {kind} of snapshot "
                f"{sid[:8]} that the audit log does not show (forged, or written behind the log)"
            )
    return errors


def _same(rec: dict, kind: str, d: dict) -> bool:
    if rec.get("type") != kind:
        return False
    if kind == "lock":
        try:
            return rec.get("mode") == d.get("mode") and from_iso(rec["until"]) == from_iso(d["until"])
        except (KeyError, ValueError, TypeError):
            return False
    if kind == "hold":
        return rec.get("reason") == d.get("reason")
    return True


def _nearest(recs: list[dict], at: _dt.datetime, fits: Callable[[dict], bool]) -> dict | None:
    """The fitting record written closest to `at` (within MATCH_WINDOW)."""
    best, gap = None, MATCH_WINDOW
    for r in recs:
        t = _time(r)
        if t is not None and fits(r) and abs(t - at) <= gap:
            best, gap = r, abs(t - at)
    return best


def _time(rec: dict) -> _dt.datetime | None:
    try:
        return from_iso(rec["time"])
    except (KeyError, ValueError, TypeError, OverflowError):
        return None


def _predates(rec: dict, since: _dt.datetime | None) -> bool:
    t = _time(rec)
    return since is not None and t is not None and t < since


def _storage_against_log(
    snap: LoggedSnapshot, stat: Callable[[str], ObjectInfo], capabilities: Capabilities, now: _dt.datetime
) -> list[str]:
    """The stored snapshot document is protected at least as the log says."""
    p = snap.protection
    locked = p.locked(now) and capabilities.object_lock
    held = p.hold and capabilities.legal_hold
    if not locked and not held:
        return []
    key = layout.snapshot(snap.sid)
    try:
        info = stat(key)
    except NotFound:
        return []  # gone: the log comparison of the snapshots reports it
    errors = []
    r = info.retention
    if locked and (r is None or r.until < p.until):  # type: ignore[operator]  # locked
        errors.append(
            f"{key}: storage retention {to_iso(r.until) if r else 'none'} is shorter than the "
            f"{p.mode} lock until {to_iso(p.until)} the audit log gives snapshot {snap.sid[:8]} "  # type: ignore[arg-type]  # locked
            f"(event {snap.lock_seq})"
        )
    if held and not info.legal_hold:
        errors.append(
            f"{key}: no legal hold in storage, but the audit log holds snapshot {snap.sid[:8]} (event {snap.hold_seq})"
        )
    return errors
