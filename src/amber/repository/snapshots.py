"""Snapshots listed, chosen and described; tags changed by audit-logged events.

`snapshots` is the engine's fast list (tags as written); `choose` is what a user
sees, the `tag` events of the audit log folded in, narrowed by restic's
--host/--path/--tag filters. Tags are never rewritten into a snapshot: a tag
change is an event, kept as long as the snapshot is locked.
"""

from __future__ import annotations

from ..errors import NotFound, UsageError
from ..repo import selection
from ..repo.selection import SnapshotFilter
from ..repo.snapshots import Snapshot
from ..retention import clockguard
from ..storage.base import Retention
from .parts import RepositoryParts


class SnapshotListing(RepositoryParts):
    """Snapshots listed, chosen, found by reference, tagged and described."""

    def snapshots(self, *, tags=(), hosts=(), paths=()) -> list[Snapshot]:
        """Every readable snapshot, oldest first, with the tags it was written with (fast: what
        the engine needs); with any filter, `choose` (tag events folded in) narrowed by it.
        Unreadable ones are reported by `check`, not here."""
        if tags or hosts or paths:
            return self.choose(SnapshotFilter.of(hosts, paths, tags))
        return self.snapshot_store.all()

    def choose(self, chosen: SnapshotFilter | None = None) -> list[Snapshot]:
        """The snapshots as a user sees them, oldest first: the `tag` events of the audit log
        folded into their tags, then narrowed by `chosen` (restic's --host/--path/--tag)."""
        snaps = selection.with_tags(self.snapshot_store.all(), (ev for ev, _raw in self.audit.honoured([])))
        return chosen.select(snaps) if chosen is not None else snaps

    @property
    def snapshot_errors(self) -> list[str]:
        return self.snapshot_store.errors

    def load_snapshot(self, sid: str) -> Snapshot:
        return self.snapshot_store.load(sid)

    def save_snapshot(self, doc: dict, retention: Retention | None = None) -> str:
        return self.snapshot_store.save(doc, retention)

    def find_snapshot(self, ref: str, chosen: SnapshotFilter | None = None) -> Snapshot:
        """By full id, a prefix of at least 8 hex characters, or 'latest': the newest snapshot
        passing `chosen` (as in restic, the filters narrow only 'latest')."""
        if ref != "latest" or chosen is None or chosen.empty():
            return self.snapshot_store.find(ref)
        snaps = self.choose(chosen) if chosen.tags else chosen.select(self.snapshot_store.all())
        if not snaps:
            raise NotFound(f"no snapshot matches {chosen.describe()} for 'latest'")
        return snaps[-1]

    def find_snapshots(self, refs, chosen: SnapshotFilter | None = None) -> list[Snapshot]:
        """Each snapshot named (by id, prefix or 'latest') once, in the order first named."""
        out: dict[str, Snapshot] = {}
        for ref in refs:
            s = self.find_snapshot(ref, chosen)
            out.setdefault(s.id, s)
        return list(out.values())

    def tag(self, snaps: list[Snapshot], add=(), remove=(), set_: list[str] | None = None) -> dict[str, dict]:
        """Change the tags of snapshots without rewriting them: one `tag` event in the audit log
        per snapshot whose tags change (a `set_` is written as what it adds and removes).
        Returns snapshot id -> {"add", "remove", "tags"} for the snapshots changed. A write-only
        key may add tags but remove none: a stolen backup key must not strip the tag a
        `forget --keep-tag` keeps by."""
        self.require_sound("tag snapshots")
        if any(len(t) > selection.MAX_TAG for t in [*add, *remove, *(set_ or [])]):
            raise UsageError(f"a tag is longer than {selection.MAX_TAG} characters")
        self.audit.check_history()
        current = {s.id: s.tags for s in snaps} | {s.id: s.tags for s in self.choose()}
        changes = {}
        for s in snaps:
            tags = current[s.id]
            if set_ is not None:
                plus, minus = [t for t in set_ if t not in tags], [t for t in tags if t not in set_]
            else:
                plus = [t for t in dict.fromkeys(add) if t not in tags]
                minus = [t for t in dict.fromkeys(remove) if t in tags or t in plus]
            if plus or minus:
                changes[s.id] = (plus, minus)
        if any(minus for _plus, minus in changes.values()):
            self.require_admin("remove tags")
        out = {}
        by_id = {s.id: s for s in snaps}
        now = self.clock.now()
        for sid, (plus, minus) in changes.items():
            p = self.protection(by_id[sid])  # the event is kept as long as the snapshot is locked
            lock = Retention(p.mode, p.until) if p.locked(now) and p.mode and p.until else None
            self.log_event("tag", sid, lock, add=plus, remove=minus)
            out[sid] = {"add": plus, "remove": minus, "tags": selection.apply_tags(current[sid], [(plus, minus)])}
        return out

    def snapshot_json(self, snap: Snapshot, overrides: dict | None = None) -> dict:
        """`overrides`: what snapshot_overrides() returned, for listing many snapshots at once."""
        p = self.protection(snap)
        out = snap.to_json()
        out["retention"] = p.retention_json(self.clock.now())
        out["legal_hold"] = p.hold
        if p.hold:
            out["legal_hold_reason"] = p.hold_reason
        found = (overrides if overrides is not None else self.snapshot_overrides()).get(snap.id, [])
        out["overrides"] = [o.to_json() for o in found]
        return out

    def snapshot_overrides(self) -> dict[str, list[clockguard.Override]]:
        """snapshot id -> the overrides that touched it: a lock shortened with
        --bypass-governance, a backup made or a lock set under a clock jump."""
        return clockguard.snapshot_overrides(self)
