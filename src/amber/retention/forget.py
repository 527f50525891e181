"""forget: remove snapshots by name or by keep policy, never one that is locked or held."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..audit.log import AuditLog
from ..clock import to_iso
from ..errors import Locked, UsageError
from ..repo.selection import group
from ..repo.snapshots import Snapshot, SnapshotStore
from ..storage.base import COMPLIANCE
from . import clockguard, replay
from .locks import RetentionTarget, protection
from .policy import KeepPolicy, apply, apply_first
from .state import Protection


@dataclass
class ForgetResult:
    keep: list = field(default_factory=list)
    remove: list = field(default_factory=list)
    locked: list = field(default_factory=list)
    reasons: dict = field(default_factory=dict)
    protections: dict = field(default_factory=dict)
    dry_run: bool = False

    def to_json(self) -> dict:
        return {
            "keep": self.keep,
            "remove": self.remove,
            "locked": self.locked,
            "dry_run": self.dry_run,
            "reasons": self.reasons,
            "protected_by": self.protections,
        }


class Forgetting(RetentionTarget, Protocol):
    snapshot_store: SnapshotStore
    audit: AuditLog


def strictest(repo: Forgetting, snap: Snapshot, events: dict, logged: dict) -> Protection:
    """What deletion is decided by: the stricter of the lock records and the audit log (`logged`,
    from `replay.log_view`), so removed records or a planted release never free a snapshot."""
    return replay.stricter(protection(repo, snap, events), logged.get(snap.id))


def refusal(snap, p, now, bypass: bool) -> str | None:
    """Why a snapshot may not be removed now, or None."""
    if p.hold:
        return f"snapshot {snap.short_id} is under a legal hold" + (f" ({p.hold_reason})" if p.hold_reason else "")
    if p.locked(now):
        if p.mode == COMPLIANCE:
            return f"snapshot {snap.short_id} is under compliance retention until {to_iso(p.until)}"
        if not bypass:
            return f"snapshot {snap.short_id} is under governance retention until {to_iso(p.until)}"
    return None


def forget_snapshots(
    repo: Forgetting, snaps: list[Snapshot], *, bypass_governance=False, dry_run=False, trust_clock=False
) -> ForgetResult:
    """Remove the named snapshots, all or none: any protected one refuses the whole command."""
    now = repo.clock.now()
    events = repo.events()
    logged = replay.log_view(repo)
    protections = [strictest(repo, s, events, logged) for s in snaps]
    refusals = [
        r + _source(repo, s, events, now, bypass_governance)
        for s, p in zip(snaps, protections, strict=True)
        if (r := refusal(s, p, now, bypass_governance))
    ]
    if refusals:
        bypassable = all(p.hold is False and p.mode != COMPLIANCE for p in protections if p.locked(now) or p.hold)
        raise Locked("; ".join(refusals), remedy="bypass-governance" if bypassable else None)
    res = ForgetResult(remove=[s.id for s in snaps], dry_run=dry_run)
    if not dry_run:
        clock = clockguard.check_before_delete(repo, _lock_ends(snaps, protections), trust_clock)
        _remove(repo, snaps, events, now, bypass_governance, clock)
    return res


def _source(repo: Forgetting, snap: Snapshot, events: dict, now, bypass: bool) -> str:
    """Where the lock records alone would let the snapshot go: say that the log holds it."""
    if refusal(snap, protection(repo, snap, events), now, bypass) is not None:
        return ""
    return " (as the audit log records it; its lock records say less)"


def _lock_policy(repo: Forgetting) -> dict | None:
    settings = getattr(repo, "settings", None)
    return getattr(settings, "lock_policy", None)


def forget_policy(
    repo: Forgetting,
    policy: KeepPolicy,
    *,
    snaps=None,
    keep_tags=(),
    group_by=("host", "paths"),
    dry_run=False,
    trust_clock=False,
) -> ForgetResult:
    """Remove every snapshot (of `snaps`, else all) that the keep policy does not keep, judged
    per group (restic's --group-by, host and paths by default). `keep_tags`: tag lists (frozensets);
    a snapshot with every tag of one of them is kept (restic's --keep-tag). Locked and held
    snapshots are kept whatever the policy says."""
    if policy.empty() and not keep_tags:
        raise UsageError("an empty keep policy would remove every snapshot", remedy="keep-rule")
    now = repo.clock.now()
    events = repo.events()
    logged = replay.log_view(repo)
    snaps = repo.snapshots() if snaps is None else snaps
    res = ForgetResult(dry_run=dry_run)
    doomed = []
    for _key, members in group(snaps, tuple(group_by)):
        reasons = _keep_reasons(repo, members, policy, keep_tags, now)
        for s in sorted(members, key=lambda s: (s.time, s.id)):
            if s.id in reasons:
                res.keep.append(s.id)
                res.reasons[s.id] = reasons[s.id]
                continue
            p = strictest(repo, s, events, logged)
            why = refusal(s, p, now, False)
            if why:
                res.keep.append(s.id)
                res.locked.append(s.id)
                res.protections[s.id] = p.describe(now)
            else:
                res.remove.append(s.id)
                doomed.append(s)
    if doomed and not dry_run:
        ends = _lock_ends(doomed, [strictest(repo, s, events, logged) for s in doomed])
        _remove(repo, doomed, events, now, False, clockguard.check_before_delete(repo, ends, trust_clock))
    return res


def _keep_reasons(repo: Forgetting, members: list, policy: KeepPolicy, keep_tags, now) -> dict[str, list[str]]:
    """id -> why the policy keeps it, in one group: its rules (with a lock policy, the first
    snapshot of each period: the one the policy locked) and its tags."""
    reasons = (apply_first if _lock_policy(repo) else apply)(members, policy, now) if not policy.empty() else {}
    for s in members:
        if any(want <= set(s.tags) for want in keep_tags if want):
            reasons.setdefault(s.id, []).append("has tags")
    return reasons


def _lock_ends(snaps: list[Snapshot], protections) -> dict:
    """snapshot -> when its lock ended (None: never locked), for the clock guard."""
    return {f"snapshot {s.short_id}": p.until for s, p in zip(snaps, protections, strict=True)}


def _remove(repo: Forgetting, snaps, events, now, bypass: bool, clock: dict) -> None:
    """Delete each snapshot and record it; `clock` is what the clock guard says to record."""
    logged = replay.log_view(repo)
    for s in snaps:
        p = strictest(repo, s, events, logged)
        repo.snapshot_store.delete(s.id, bypass_governance=bypass and p.locked(now))
        repo.event_store.write(
            s.id,
            "forget",
            None,
            bypass_governance=bool(bypass and p.locked(now)),
            snapshot_time=to_iso(s.time),
            hostname=s.hostname,
            paths=s.paths,
            run=s.doc.get("run"),
            **clock,
        )
        repo.log_event(
            "forget",
            s.id,
            None,
            bypass_governance=bool(bypass and p.locked(now)),
            protection=p.retention_json(),
            snapshot_time=to_iso(s.time),
            **clock,
        )
