"""Lock, hold, release and forget events of snapshots: sealed, write-once, one object each.

`locks/<snapshot id>/<event id>` (FORMAT.md §17.2). An event's `snapshot`
must name the folder it is in; events that do not, or do not authenticate,
are left out here and reported by `check`.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import socket
from collections.abc import Callable

from ..clock import Clock, from_iso, to_iso
from ..errors import IntegrityError, NotFound
from ..format import layout
from ..storage.base import Retention
from . import records as rec


class EventStore:
    def __init__(self, records: rec.Records, clock: Clock, actor_key: Callable[[], str]) -> None:
        self.records = records
        self.clock = clock
        self._actor_key = actor_key  # the first 16 hex of the key file that opened the repository
        self._cache: dict[str, list[dict]] | None = None

    def all(self) -> dict[str, list[dict]]:
        """snapshot id -> its readable events."""
        if self._cache is None:
            out: dict[str, list[dict]] = {}
            for info in self.records.listing(layout.LOCKS):
                parts = layout.event_key_parts(info.key)
                if parts is None:
                    continue
                try:
                    ev = self.read(info.key)
                except (IntegrityError, NotFound):
                    continue
                if ev.get("snapshot") == parts[0]:
                    out.setdefault(parts[0], []).append(ev)
            self._cache = out
        return self._cache

    def of(self, snapshot_id: str) -> list[dict]:
        return self.all().get(snapshot_id, [])

    def read(self, key: str) -> dict:
        ev = self.records.get(rec.EVENT, key)
        ev["id"] = layout.last(key)
        return ev

    def problems(self) -> list[str]:
        """Every event object that does not authenticate or decode."""
        errors: list[str] = []
        for _info, _ev in self.records.scan(rec.EVENT, layout.LOCKS, errors):
            pass
        return errors

    def write(self, snapshot_id: str, kind: str, retention: Retention | None, **fields) -> dict:
        # strictly after the snapshot's last event, so events made within one clock tick keep their order
        t = self.clock.now()
        for prev in self.of(snapshot_id):
            try:
                t = max(t, from_iso(prev["time"]) + _dt.timedelta(microseconds=1))
            except (KeyError, ValueError, TypeError):
                continue
        ev = {
            "v": 1,
            "type": kind,
            "snapshot": snapshot_id,
            "time": to_iso(t),
            "host": socket.gethostname(),
            "user": user_name(),
            "key": self._actor_key(),
            **fields,
        }
        eid = self.records.put(rec.EVENT, ev, lambda name: layout.event(snapshot_id, name), retention)
        self._cache = None
        ev["id"] = eid
        return ev

    def forget(self) -> None:
        self._cache = None


def user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "?"
