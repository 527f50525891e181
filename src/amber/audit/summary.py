"""What a backup needs from every event of the audit log, kept by the client between runs.

A backup records every stored snapshot the log does not name yet, and compares
the clock with the newest time and the locks the log records; every open of a
repository with settings records compares them with their `setting` events. Reading every
event for that would make a backup cost O(events). So each client keeps

    $XDG_CACHE_HOME/amber/<repository id>/log-summary.json

the fold of the events up to a tree size and root, and brings it up to date by
reading only the entries added since — after checking, with a consistency proof
from the tiles, that the log still extends that root (else it starts over). A
lost or damaged file costs one full read. Pure: the reading is the log's.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..clock import from_iso, to_iso
from ..repo.settings import logged_settings
from .authors import Authors

T = TypeVar("T")


def _time(value: object) -> _dt.datetime | None:
    try:
        return from_iso(value) if isinstance(value, str) else None
    except (ValueError, OverflowError):
        return None


def event_grant(ev: dict) -> tuple[_dt.datetime, _dt.datetime] | None:
    """(set, until) of the lock an event records: a `snapshot` event's retention, or a `lock`."""
    d: dict = ev["details"] if isinstance(ev.get("details"), dict) else {}
    start = until = None
    if ev.get("type") == "snapshot" and isinstance(d.get("retention"), dict):
        start, until = _time(d.get("time")) or _time(ev.get("time")), _time(d["retention"].get("until"))
    elif ev.get("type") == "lock":
        start, until = _time(ev.get("time")), _time(d.get("until"))
    if start is None or until is None or until <= start:
        return None
    return start, until


@dataclass
class Summary:
    """The fold of events [0, size) of the log whose root is `root`."""

    size: int = 0
    root: bytes = b""
    snapshots: set[str] = field(default_factory=set)  # ids named by `snapshot` events
    newest: _dt.datetime | None = None  # the latest event time
    grants: list[tuple[_dt.datetime, _dt.datetime]] = field(default_factory=list)  # locks not ended by `newest`
    settings: dict[int, dict] = field(default_factory=dict)  # version -> the `setting` event that recorded it
    witnesses: dict[str, dict] = field(default_factory=dict)  # name -> the details of its `witness` event
    abandoned: list[list[str]] = field(default_factory=list)  # [witness, object] a `trust-reset` gave up
    authors: Authors = field(default_factory=lambda: Authors(""))  # who may write what (format 2)

    @classmethod
    def of(cls, origin: str) -> Summary:
        """The empty fold of the log whose origin is `origin` (`AuditLog.origin`)."""
        return cls(authors=Authors(origin))

    def add(self, ev: dict) -> None:
        """One event folded in, unless the log does not honour it (audit/authors.py): a
        setting, witness or trust reset a backup key wrote counts for nothing."""
        if not self.authors.judge(ev)[0]:
            return
        if ev.get("type") == "snapshot" and isinstance(ev.get("snapshot"), str):
            self.snapshots.add(ev["snapshot"])
        for version, event in logged_settings([(ev, b"")]).items():
            self.settings.setdefault(version, event)
        self._witness(ev)
        t = _time(ev.get("time"))
        if t is not None and (self.newest is None or t > self.newest):
            self.newest = t
            self.grants = [g for g in self.grants if g[1] > t]  # a lock over before the newest time counts no more
        grant = event_grant(ev)
        if grant is not None and (self.newest is None or grant[1] > self.newest):
            self.grants.append(grant)

    def _witness(self, ev: dict) -> None:
        """Fold a `witness` event (the witness configuration) or a `trust-reset` (the witness
        checkpoints it abandons)."""
        d = ev.get("details")
        if not isinstance(d, dict):
            return
        if ev.get("type") == "witness" and isinstance(d.get("name"), str) and isinstance(d.get("url"), str):
            self.witnesses[d["name"]] = d
        elif ev.get("type") == "trust-reset" and isinstance(d.get("abandoned"), list):
            for a in d["abandoned"]:
                if isinstance(a, dict) and isinstance(a.get("witness"), str) and isinstance(a.get("object"), str):
                    self.abandoned.append([a["witness"], a["object"]])

    def to_json(self) -> dict:
        return {
            "v": 1,
            "size": self.size,
            "root": self.root.hex(),
            "snapshots": sorted(self.snapshots),
            "newest": to_iso(self.newest) if self.newest else None,
            "grants": [[to_iso(a), to_iso(b)] for a, b in self.grants],
            "settings": {str(v): ev for v, ev in self.settings.items()},
            "witnesses": self.witnesses,
            "abandoned": self.abandoned,
            "authors": self.authors.to_json(),
        }

    @classmethod
    def from_json(cls, doc: dict) -> Summary:
        newest = doc["newest"]
        return cls(
            int(doc["size"]),
            bytes.fromhex(doc["root"]),
            set(doc["snapshots"]),
            from_iso(newest) if newest else None,
            [(from_iso(a), from_iso(b)) for a, b in doc["grants"]],
            {int(v): ev for v, ev in doc["settings"].items()},
            dict(doc.get("witnesses") or {}),
            [list(a) for a in doc.get("abandoned") or []],
            Authors.from_json(doc["authors"]),
        )


def load(path: str) -> Summary | None:
    """The summary kept at `path`; None if there is none or it cannot be read."""
    return load_kept(path, Summary.from_json)


def save(path: str, summary: Summary) -> None:
    save_kept(path, summary.to_json())


def load_kept(path: str, from_json: Callable[[dict], T]) -> T | None:
    """A fold a client keeps as JSON (`v`: 1); None if there is none or it cannot be read
    (the caller then folds every event again)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        return from_json(doc) if doc.get("v") == 1 else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None


def save_kept(path: str, doc: dict) -> None:
    """Replace the file atomically; a client that cannot write it reads more next time."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
    except (OSError, ValueError, TypeError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
