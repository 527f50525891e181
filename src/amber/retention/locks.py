"""Locks and holds on snapshots, carried down to every object a snapshot needs.

A snapshot's protection is recorded twice: as write-once, sealed events under
`locks/<snapshot id>/<event id>` (the authenticated record of who did what,
from which the state is derived), and as retention and legal holds set in
storage on every object the snapshot needs, which the storage itself
enforces: the snapshot document, every pack holding one of its blobs, every
index file naming such a pack, the config and the key files. A pack shared
by several snapshots keeps the longest retention any of them asks for
(compliance if any of them is compliance); `check` verifies that invariant.
"""

from __future__ import annotations

import datetime as _dt
from typing import Protocol

from ..clock import Clock, add_duration, parse_date, to_iso
from ..errors import AmberError, IntegrityError, Locked, NotFound, UsageError
from ..format import layout
from ..repo.blobs import BlobStore
from ..repo.events import EventStore
from ..repo.keys import KeyRing
from ..repo.snapshots import Snapshot
from ..storage.base import COMPLIANCE, GOVERNANCE, MODES, Retention, Storage
from .replay import stricter
from .state import Protection, derive


class RetentionTarget(Protocol):
    """What locks, holds, forget and prune work on."""

    storage: Storage
    clock: Clock
    blobs: BlobStore
    event_store: EventStore
    key_ring: KeyRing

    def snapshots(self, *, tags=(), hosts=(), paths=()) -> list[Snapshot]: ...

    def events(self) -> dict[str, list[dict]]: ...

    def load_index(self, force: bool = False) -> None: ...

    def referenced_blobs(self, snaps) -> set[bytes]: ...

    def log_event(self, kind: str, snapshot: str | None = None, lock: Retention | None = None, **details) -> dict: ...


def protection(repo: RetentionTarget, snap: Snapshot, events: dict[str, list[dict]] | None = None) -> Protection:
    evs = (events if events is not None else repo.events()).get(snap.id, [])
    return derive(snap.retention, evs)


def needed_objects(repo: RetentionTarget, snap: Snapshot, packs: set[bytes] | None = None) -> set[str]:
    """Every storage key a snapshot needs to be restored (its packs: `packs` if given).

    A write-only key cannot read a snapshot's trees: it takes the packs the snapshot's
    header names (a write-only backup records them), else every indexed pack — a lock or
    hold then protects more than the snapshot needs, never less."""
    repo.load_index()
    blobs = repo.blobs
    if packs is None and snap.readable:
        packs = {blobs.lookup(b).pack for b in repo.referenced_blobs([snap])}
    elif packs is None:
        named = snap.doc.get("packs")
        packs = {bytes.fromhex(p) for p in named} if named is not None else set(blobs.pack_index_files)
    keys = {layout.snapshot(snap.id), layout.CONFIG}
    keys.update(repo.key_ring.keys())
    parity = bool(getattr(blobs, "parity_percent", 0))  # a repository made with parity has it for every pack
    for p in packs:
        keys.add(layout.pack(p))
        if parity:
            keys.add(layout.parity(p))
        keys.update(blobs.pack_index_files.get(p, ()))
    keys.update(layout.event(snap.id, ev["id"]) for ev in repo.event_store.of(snap.id))
    return keys


def extend_objects(repo: RetentionTarget, keys, retention: Retention, upgrade: bool = False) -> int:
    """Make every object's retention reach `retention`; returns how many changed.

    Compliance wins over governance, but turning an active governance period into compliance
    needs the governance bypass on S3: only an administrator's `lock` asks for it (`upgrade`);
    a backup extends such objects as governance and `check` notes it."""
    changed = 0
    for key in sorted(keys):
        try:
            info = repo.storage.stat(key)
        except NotFound:
            continue
        cur = info.retention
        mode = COMPLIANCE if retention.mode == COMPLIANCE or (cur and cur.mode == COMPLIANCE) else GOVERNANCE
        converting = mode == COMPLIANCE and cur is not None and cur.mode == GOVERNANCE and cur.active(repo.clock.now())
        if converting and not upgrade:
            mode = GOVERNANCE  # a backup client holds no bypass: extend as governance
        until = max(retention.until, cur.until) if cur else retention.until
        if cur is not None and cur.mode == mode and cur.until >= until:
            continue
        repo.storage.set_retention(key, Retention(mode, until), bypass_governance=converting and upgrade)
        changed += 1
    return changed


def carry_protection(repo: RetentionTarget, heals: dict[bytes, set[bytes]]) -> list[str]:
    """A blob stored again because its copies were damaged (repo/damage.py) is now read from
    its new pack by every snapshot that needed the damaged ones: the new pack and its index
    files get the strongest retention and the legal hold of those packs, whose protection
    covers every locked or held snapshot that uses them. Returns what could not be done
    (a damaged pack that is gone tells nothing; a backup token may not place a legal hold)."""
    problems = []
    now = repo.clock.now()
    for new, olds in sorted(heals.items()):
        keys = {layout.pack(new), *repo.blobs.pack_index_files.get(new, ())}
        if repo.blobs.parity_percent:
            keys.add(layout.parity(new))
        for old in sorted(olds):
            try:
                info = repo.storage.stat(layout.pack(old))
            except NotFound:
                continue
            try:
                if info.retention is not None and info.retention.active(now):
                    extend_objects(repo, keys, info.retention)
                if info.legal_hold and repo.storage.capabilities.legal_hold:
                    for key in sorted(keys):
                        repo.storage.set_legal_hold(key, True)
            except AmberError as e:
                problems.append(
                    f"pack {new.hex()[:16]} (blobs stored again for the damaged pack {old.hex()[:16]}) could "
                    f"not be given that pack's protection: {e}"
                )
    return problems


def resolve_until(clock: Clock, for_: str | None, until: str | None) -> _dt.datetime:
    """When a lock given as a duration from now or as an end date ends; an empty value (an unset
    variable in a script) is a usage error, never "no lock", and so is an end not in the future."""
    if (for_ is None) == (until is None):
        raise UsageError("a lock needs exactly one of a duration or an end date", remedy="lock-period")
    if for_ is not None and not for_.strip():
        raise UsageError("the lock duration is empty: give one such as 30d")
    if until is not None and not until.strip():
        raise UsageError("the lock end date is empty: give one such as 2031-01-01")
    now = clock.now()
    t = add_duration(now, for_) if for_ is not None else parse_date(until)  # type: ignore[arg-type]
    if t <= now:
        raise UsageError(f"the lock would end in the past ({to_iso(t)})")
    return t


def lock(
    repo: RetentionTarget, snap: Snapshot, mode: str, until: _dt.datetime, bypass_governance: bool = False
) -> Protection:
    if mode not in MODES:
        raise UsageError("the retention mode must be governance or compliance", remedy="retention-mode")
    now = repo.clock.now()
    cur = protection(repo, snap)
    if cur.locked(now):
        if cur.mode == COMPLIANCE and mode != COMPLIANCE:
            raise Locked(
                f"snapshot {snap.short_id} is under compliance retention until "
                f"{to_iso(cur.until)}: it cannot be downgraded to governance"
            )
        if until < cur.until and (cur.mode == COMPLIANCE or not bypass_governance):
            raise Locked(
                f"snapshot {snap.short_id} is under {cur.mode} retention until "
                f"{to_iso(cur.until)}: it cannot be shortened",
                remedy=None if cur.mode == COMPLIANCE else "bypass-governance",
            )
    retention = Retention(mode, until)
    repo.event_store.write(
        snap.id,
        "lock",
        retention,
        mode=mode,
        until=to_iso(until),
        bypass_governance=bool(bypass_governance and cur.locked(now) and until < cur.until),
    )
    new = protection(repo, snap)
    shortened = cur.locked(now) and until < cur.until
    if shortened:  # governance shortened by bypass: objects keep what other snapshots need
        repo.storage.set_retention(layout.snapshot(snap.id), retention, bypass_governance=True)
    else:
        extend_objects(repo, needed_objects(repo, snap), Retention(new.mode, new.until), upgrade=True)
    repo.log_event(
        "lock",
        snap.id,
        Retention(new.mode, new.until),
        mode=mode,
        until=to_iso(until),
        bypass_governance=bool(shortened),
        previous=cur.retention_json(),
    )
    return new


def hold(repo: RetentionTarget, snap: Snapshot, reason: str) -> Protection:
    if not reason or not reason.strip():
        raise UsageError("a legal hold needs a reason", remedy="hold-reason")
    if not repo.storage.capabilities.legal_hold:
        raise UsageError(f"{repo.storage.describe()} cannot enforce legal holds")
    cur = protection(repo, snap)
    # storage first: if it cannot hold (a bucket without Object Lock), nothing says "held"
    for key in sorted(needed_objects(repo, snap), key=lambda k: not k.startswith(layout.SNAPSHOTS)):
        try:
            repo.storage.set_legal_hold(key, True)
        except NotFound:
            continue
    ev = repo.event_store.write(snap.id, "hold", _event_retention(cur, repo), reason=reason.strip())
    repo.storage.set_legal_hold(layout.event(snap.id, ev["id"]), True)  # the record of the hold is held too
    repo.log_event("hold", snap.id, _event_retention(cur, repo), reason=reason.strip())
    return protection(repo, snap)


def release(repo: RetentionTarget, snap: Snapshot, logged: dict[str, Protection] | None = None) -> Protection:
    """Lift a hold. With `logged` (`replay.log_view`), a hold the audit log shows counts too: one
    whose records were removed can still be released, and no other snapshot's is cleared."""
    logged = logged or {}
    cur = stricter(protection(repo, snap), logged.get(snap.id))
    if not cur.hold:
        raise UsageError(f"snapshot {snap.short_id} is not under a legal hold")
    events = repo.events()
    still_needed: set[str] = set()
    for other in repo.snapshots():
        if other.id != snap.id and stricter(protection(repo, other, events), logged.get(other.id)).hold:
            still_needed |= needed_objects(repo, other)
    # storage first: if it refuses (a client without the right), nothing says "released"
    for key in needed_objects(repo, snap) - still_needed:
        try:
            repo.storage.set_legal_hold(key, False)
        except NotFound:
            continue
    repo.event_store.write(snap.id, "release", _event_retention(cur, repo))
    repo.log_event("release", snap.id, _event_retention(cur, repo), reason=cur.hold_reason)
    return protection(repo, snap)


def strongest_protection(repo: RetentionTarget) -> tuple[Retention | None, bool]:
    """The longest active lock of any snapshot (compliance if any is), and whether any is held:
    what an object every snapshot needs (a key file) must carry."""
    now = repo.clock.now()
    events = repo.events()
    mode, until, held = GOVERNANCE, None, False
    for snap in repo.snapshots():
        p = protection(repo, snap, events)
        held = held or p.hold
        if p.locked(now):
            until = p.until if until is None else max(until, p.until)
            if p.mode == COMPLIANCE:
                mode = COMPLIANCE
    return (Retention(mode, until) if until is not None else None), held


def _event_retention(p: Protection, repo: RetentionTarget) -> Retention | None:
    if p.locked(repo.clock.now()):
        return Retention(p.mode, p.until)
    return None


def verify_invariant(
    repo: RetentionTarget, snaps: list[Snapshot], events: dict[str, list[dict]], now: _dt.datetime
) -> list[str]:
    """Objects whose storage protection is shorter than a snapshot that needs them."""
    problems = []
    for snap in snaps:
        p = protection(repo, snap, events)
        if not p.locked(now) and not p.hold:
            continue
        try:
            keys = needed_objects(repo, snap)
        except IntegrityError as e:
            problems.append(f"snapshot {snap.short_id}: cannot list what it needs ({e})")
            continue
        for key in sorted(keys):
            try:
                info = repo.storage.stat(key)
            except NotFound:
                continue  # missing objects are reported by the structure check
            r = info.retention
            if p.locked(now):
                if r is None or r.until < p.until:
                    problems.append(
                        f"{key}: retention {to_iso(r.until) if r else 'none'} is shorter than "
                        f"snapshot {snap.short_id}'s {p.mode} lock until {to_iso(p.until)}"
                    )
                elif p.mode == COMPLIANCE and r.mode != COMPLIANCE:
                    problems.append(
                        f"note: {key}: governance retention (long enough) under snapshot "
                        f"{snap.short_id}'s compliance lock: it was governance before, and "
                        "only an administrator's bypass can make it compliance"
                    )
            if p.hold and not info.legal_hold and repo.storage.capabilities.legal_hold:
                problems.append(f"{key}: no legal hold, but snapshot {snap.short_id} is held")
    return problems
