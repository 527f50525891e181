"""Locks, legal holds, forget and prune.

Every change first checks the audit log's history (never change a rolled-back
or forked repository) and the key's role; a snapshot's protection is the
stricter of what its lock records and what the audit log says, the log's view
cached until the log grows. The engines (retention/) do the work.
"""

from __future__ import annotations

import datetime as _dt

from ..errors import UsageError
from ..repo.snapshots import Snapshot
from ..retention import forget as forgetting
from ..retention import locks, preflight, prune, replay
from ..retention.policy import KeepPolicy
from ..retention.state import Protection
from ..storage.base import GOVERNANCE, MODES, Retention
from .parts import RepositoryParts


class RetentionOperations(RepositoryParts):
    """Locks, legal holds, forget and prune, each against the audit log's history."""

    def events(self) -> dict[str, list[dict]]:
        return self.event_store.all()

    def protection(self, snap: Snapshot) -> Protection:
        """The stricter of what the lock records and the audit log say (forget decides by it)."""
        if self._log_view is None:
            self._log_view = replay.log_view(self)
        return replay.stricter(locks.protection(self, snap), self._log_view.get(snap.id))

    def retention(self, duration: str | None = None, date: str | None = None, mode: str | None = None) -> Retention:
        """A lock for a new snapshot, as a duration from now or an end date; without a mode,
        the repository's default mode, else governance."""
        default = (self.config.get("default_retention") or {}).get("mode")
        mode = mode or default or GOVERNANCE
        if mode not in MODES:
            raise UsageError("the retention mode must be governance or compliance", remedy="retention-mode")
        until = self.lock_end(duration, date)
        self.check_minimum(until, "the backup's retention")
        return Retention(mode, until)

    def lock_end(self, duration: str | None = None, date: str | None = None) -> _dt.datetime:
        """When a lock asked for as a duration from now, or as an end date, ends."""
        return locks.resolve_until(self.clock, duration, date)

    def lock(
        self, snap: Snapshot, mode: str | None, until: _dt.datetime, bypass_governance: bool = False
    ) -> Protection:
        """Lock or extend. Without a mode: the snapshot's active mode, else the repository's
        default mode, else governance."""
        self.require_sound("lock")
        if bypass_governance:
            self.require_admin("shorten a lock (--bypass-governance)")
        self.check_minimum(until, "the lock")
        if mode is None:
            cur = self.protection(snap)
            default = (self.config.get("default_retention") or {}).get("mode")
            mode = (cur.mode if cur.locked(self.clock.now()) else None) or default or GOVERNANCE
        self.audit.check_history()  # never change a rolled-back or forked repository
        locks.lock(self, snap, mode, until, bypass_governance)
        return self.protection(snap)

    def hold(self, snap: Snapshot, reason: str) -> Protection:
        self.require_sound("hold")
        self.audit.check_history()
        return locks.hold(self, snap, reason)

    def release(self, snap: Snapshot) -> Protection:
        self.require_admin("release a legal hold")
        self.require_sound("release")
        self.audit.check_history()
        return locks.release(self, snap, replay.log_view(self))

    def forget(self, snaps, **kw) -> forgetting.ForgetResult:
        self.require_admin("forget snapshots")
        self.require_sound("forget")
        if not kw.get("dry_run"):
            self.audit.check_history()
        return forgetting.forget_snapshots(self, snaps, **kw)

    def forget_policy(self, policy: KeepPolicy, **kw) -> forgetting.ForgetResult:
        self.require_admin("forget snapshots")
        self.require_sound("forget")
        if not kw.get("dry_run"):
            self.audit.check_history()
        return forgetting.forget_policy(self, policy, **kw)

    def prune(self, **kw) -> prune.PruneReport:
        self.require_admin("prune")
        self.require_sound("prune")
        if not kw.get("dry_run"):
            self.audit.check_history()
        return prune.prune(self, **kw)

    def require_prunable(self) -> None:
        """Refuse (IntegrityError) what prune would refuse: `forget --prune` asks before it forgets."""
        preflight.require_sound(self, "prune")
