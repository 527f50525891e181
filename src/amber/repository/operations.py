"""Backup, copy, restore and the restore drill: the operations that move file data.

Each is recorded in the audit log (a backup and a copy by the engine, a restore
and a drill here); copy, restore and the drill also record the damage they ran
into (`record_damage`), so the next backup stores those blobs again. A backup
whose changes raise an anomaly alarm holds its parent, the last good state.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from .. import copy as copying
from ..backup.archiver import BackupResult
from ..backup.dryrun import dry_run
from ..backup.run import backup
from ..copy import CopyReport
from ..errors import AmberError, RestoreFailed, UsageError
from ..repo.snapshots import Snapshot
from ..restore import drill as drilling
from ..restore.restorer import RestoreStats, restore
from .parts import RepositoryParts

if TYPE_CHECKING:
    from . import Repository


class DataOperations(RepositoryParts):
    """Backup (and its anomaly alarm), copy, restore and the restore drill."""

    def backup(self, paths, *, auto_hold: bool = True, **kw) -> BackupResult:
        """Back up `paths` (backup/run.py). When the changes against the parent raise an anomaly
        alarm (backup/anomaly.py) the snapshot stands; the parent, the last good state, is held
        (unless `auto_hold` is False) and an `anomaly` event records the alarm."""
        self.require_sound("back up")
        if kw.get("retention") is not None:
            self.check_minimum(kw["retention"].until, "the backup's retention")
        res = backup(self, paths, **kw)
        found = res.anomalies
        if found is None or not found.alarm:
            return res
        held = self._hold_parent(found, res.snapshot_id) if auto_hold else None
        found = dataclasses.replace(found, held=held)
        self.log_event(
            "anomaly", res.snapshot_id, parent=found.parent, signals=found.signals, reasons=found.reasons, held=held
        )
        return dataclasses.replace(res, anomalies=found)

    def anomalies(self) -> list[dict]:
        """The `anomaly` events of the audit log, oldest first (docs/AUDIT-LOG.md)."""
        out = []
        for ev, _raw in self.audit.entries():
            if ev.get("type") != "anomaly":
                continue
            d = ev.get("details") or {}
            out.append(
                {
                    "seq": ev["seq"],
                    "time": ev["time"],
                    "snapshot": ev.get("snapshot"),
                    "parent": d.get("parent"),
                    "held": d.get("held"),
                    "reasons": d.get("reasons") or [],
                    "signals": d.get("signals") or {},
                }
            )
        return out

    def _hold_parent(self, found, sid: str) -> str | None:
        """Hold the parent of an alarmed backup (an ordinary `hold` event); its id, or None
        (with a warning) when the hold could not be placed."""
        reason = f"anomaly alarm raised by backup {sid[:8]}: " + "; ".join(found.reasons)
        try:
            self.hold(self.find_snapshot(found.parent), reason[:1000])
        except AmberError as e:
            self.warn(f"the anomaly alarm could not hold the parent snapshot {found.parent[:8]}: {e}")
            return None
        return found.parent

    def backup_dry_run(self, paths, **kw) -> BackupResult:
        """What `backup` would store (backup/dryrun.py): nothing is written to the repository."""
        return dry_run(self, paths, **kw)

    def copy_from(
        self,
        source: "Repository",
        refs=(),
        *,
        hosts=(),
        tags=(),
        paths=(),
        retain: str | None = None,
        retention_mode: str | None = None,
        report: CopyReport | None = None,
    ) -> CopyReport:
        """Copy snapshots of `source` (those named by `refs`, else all; narrowed by host, tag
        and path) that are not copied yet (copy.py). `retain` (a duration, with
        `retention_mode`) replaces the lock each copy would get; never below the minimum."""
        source.require_read("copy from it")
        self.require_sound("copy snapshots")
        if source.id == self.id:
            raise UsageError(f"the source is this repository ({self.id[:10]}): nothing to copy")
        snaps = copying.select(source, refs, hosts, tags, paths)
        lock = self.retention(retain, mode=retention_mode) if retain is not None else None
        try:
            return copying.copy_snapshots(self, source, snaps, lock, report)
        finally:
            self.record_damage("copy")

    def restore(self, snap: Snapshot, target: str, **kw) -> RestoreStats:
        self.require_read("restore")
        try:
            stats = restore(self, snap, target, **kw)
        finally:
            self.record_damage("restore")  # the next backup then stores those blobs again
        try:  # a read-only client can restore without recording it
            self.log_event(
                "restore",
                snap.id,
                target=os.path.abspath(target),
                files=stats.files,
                bytes=stats.bytes_written,
                verified=bool(kw.get("verify")),
            )
        except AmberError as e:
            self.warn(f"the restore was not recorded in the audit log: {e}")
        return stats

    def drill(
        self, snap: Snapshot, *, sample: str | None = None, target: str | None = None, stats: RestoreStats | None = None
    ) -> drilling.DrillReport:
        """A restore drill (restore/drill.py): the snapshot, or a deterministic sample of its files,
        restored into `target` (else a scratch folder, removed after), every byte verified, timed,
        the full restore's time extrapolated; recorded as a `drill` event."""
        self.require_read("run a restore drill")
        spec = drilling.Sample.parse(sample)
        if target is not None and os.path.exists(target) and (not os.path.isdir(target) or os.listdir(target)):
            raise UsageError(f"--target {target}: a drill restores into an empty or new folder")
        files = [(path, int(node.get("size") or 0)) for path, node in self.walk(snap.tree) if node["type"] == "file"]
        chosen = drilling.choose(files, spec, snap.id)
        rep = drilling.DrillReport(
            snap.id, spec.describe(), total_files=len(files), total_bytes=sum(size for _p, size in files)
        )
        scratch = target or tempfile.mkdtemp(prefix="amber-drill-")
        rep.target, rep.kept = os.path.abspath(scratch), target is not None
        stats = stats or RestoreStats()
        started = drilling.timer()
        try:
            if chosen:
                restore(
                    self, snap, scratch, include=[] if spec.whole else [p for p, _s in chosen], verify=True, stats=stats
                )
        except RestoreFailed as e:
            rep.errors = e.problems
        finally:
            rep.seconds = drilling.timer() - started
            self.record_damage("drill")
            if target is None:
                shutil.rmtree(scratch, ignore_errors=True)
        rep.files, rep.bytes, rep.verified = stats.files, stats.bytes_written, stats.verified
        self.log_event(
            "drill",
            snap.id,
            sample=rep.sample,
            files=rep.files,
            bytes=rep.bytes,
            verified=rep.verified,
            seconds=round(rep.seconds, 3),
            throughput=round(rep.throughput),
            rto_seconds=round(rep.rto_seconds, 1),
            total_files=rep.total_files,
            total_bytes=rep.total_bytes,
            ok=rep.ok,
            errors=len(rep.errors or []),
        )
        return rep
