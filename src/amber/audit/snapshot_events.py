"""The `snapshot` events: every stored snapshot is named by one, written by the backup that
stored it, or by a later writer when a crash kept it from being recorded (docs/AUDIT-LOG.md §10)."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

from ..clock import to_iso
from ..repo.snapshots import Snapshot, SnapshotStore
from ..storage.base import Retention

if TYPE_CHECKING:
    from .log import AuditLog

RECOVER_AFTER = _dt.timedelta(minutes=10)  # then a snapshot without its event is recorded by others


def record_snapshots(
    log: AuditLog, snapshots: SnapshotStore, sid: str, retention: Retention | None = None
) -> list[dict]:
    """Append a `snapshot` event for every stored snapshot the log does not name yet:
    the one just written, and any a crash kept from being recorded (marked recovered)."""
    logged = log.logged_snapshots()
    snapshots.forget()
    out = []
    now = log.clock.now()
    for s in snapshots.all():
        if s.id in logged or not s.readable:  # a write-only key leaves others' to a full key
            continue
        if s.id != sid and not orphaned(snapshots, s, now):
            continue  # another backup's, still about to record itself
        ret = retention if s.id == sid else None
        out.append(log.append("snapshot", s.id, ret, **snapshot_details(s), recovered=s.id != sid))
    return out


def orphaned(snapshots: SnapshotStore, snap: Snapshot, now: _dt.datetime) -> bool:
    """A snapshot stored long enough ago that its own backup cannot still be recording it."""
    stored = snapshots.stored_at(snap.id)
    return stored is not None and now - stored > RECOVER_AFTER


def snapshot_details(s: Snapshot) -> dict:
    return {
        "time": to_iso(s.time),
        "hostname": s.hostname,
        "username": s.username,
        "paths": s.paths,
        "tags": s.tags,
        "tree": s.tree,
        "content_root": s.content_root,
        "retention": s.retention,
        "files": s.summary.get("files_total"),
        "bytes": s.summary.get("bytes_total"),
        **({"clock_jump": s.doc["clock_jump"]} if "clock_jump" in s.doc else {}),
    }
