"""prune: delete data no snapshot needs, never racing a concurrent backup.

Deletion is two-phase and coordinated through write-once objects only:

1. Every backup first writes `running/<run id>` and only then reads the
   index and the prune plans; its snapshot names the run.
2. prune computes the blobs the snapshots use, repacks partly used packs
   (only adding new packs and an index), and writes `prune/plan-*` naming the
   packs to delete. Backups that start after the plan do not deduplicate
   against planned packs, so they never come to depend on them.
3. prune then looks at `running/`: a run with no snapshot that is younger
   than RUN_TIMEOUT may still be deduplicating against planned packs, so the
   plan waits for a later prune. Otherwise the snapshots are read again
   (catching any that appeared meanwhile), a tombstone `prune/tomb-*` naming
   the packs is written, then the packs are deleted, then the plan.

Index entries for tombstoned packs are ignored when the index is loaded, so
index files stay write-once; an index file all of whose packs are gone is
deleted. Packs whose own retention or legal hold is still active are left
in place and reported: prune waits out locks instead of failing.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ..audit.log import AuditLog
from ..clock import from_iso, to_iso
from ..errors import AmberError, IntegrityError, Locked, NotFound
from ..format import layout
from ..repo import records as rec
from ..repo.snapshots import SnapshotStore
from . import clockguard, preflight, replay, runs
from .locks import RetentionTarget

RUN_TIMEOUT = _dt.timedelta(hours=24)  # a backup running longer is presumed dead
REPACK_UNUSED = 0.25  # repack a pack once this share of it is unused


@dataclass
class PruneReport:
    dry_run: bool = False
    packs_total: int = 0
    packs_deleted: list = field(default_factory=list)
    bytes_freed: int = 0
    packs_planned: list = field(default_factory=list)
    packs_repacked: list = field(default_factory=list)
    packs_locked: dict = field(default_factory=dict)  # pack -> why it stays
    index_deleted: list = field(default_factory=list)
    waiting_for_runs: list = field(default_factory=list)
    runs_cleaned: int = 0

    def to_json(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "packs_total": self.packs_total,
            "packs_deleted": self.packs_deleted,
            "bytes_freed": self.bytes_freed,
            "packs_planned": self.packs_planned,
            "packs_repacked": self.packs_repacked,
            "packs_locked": self.packs_locked,
            "index_deleted": self.index_deleted,
            "waiting_for_runs": self.waiting_for_runs,
        }


class Pruned(RetentionTarget, Protocol):
    """What prune works on: the retention target, and the records it plans with."""

    records: rec.Records
    snapshot_store: SnapshotStore
    audit: AuditLog
    index_errors: list[str]

    def walk(self, tree_id: str, prefix: str = "", errors: list[str] | None = None) -> Iterator[tuple[str, dict]]: ...


# -- records -----------------------------------------------------------------------


def load_records(records: rec.Records) -> tuple[set[bytes], dict[str, set[bytes]]]:
    """(tombstoned packs, plan key -> planned packs)."""
    tombs: set[bytes] = set()
    plans: dict[str, set[bytes]] = {}
    for info, doc in records.scan(rec.PRUNE, layout.PRUNE):
        try:
            packs = {bytes.fromhex(p) for p in doc["packs"]}
        except (ValueError, KeyError, TypeError):
            continue
        name = layout.last(info.key)
        if name.startswith(layout.TOMB):
            tombs |= packs
        elif name.startswith(layout.PLAN):
            plans[info.key] = packs
    return tombs, plans


def start_run(repo: Pruned) -> str:
    """Announce a backup before it reads the index (see the module docstring); the marker
    names this process, so prune can tell when it is dead (retention/runs.py)."""
    doc = {"v": 1, "time": to_iso(repo.clock.now()), "beat": runs.BEAT_EVERY}
    doc.update(runs.Host.current().marker(os.getpid()))
    return repo.records.put(rec.PRUNE, doc, layout.run_marker)


def heartbeat(repo: Pruned, run_id: str) -> runs.Heartbeat:
    """The heartbeats of run `run_id` (`beats/<id>`, sealed `{"v","time","run"}`), which keep a
    long backup respected by the prunes of other hosts (retention/runs.py); not started."""

    def beat() -> None:
        repo.records.put(rec.PRUNE, {"v": 1, "time": to_iso(repo.clock.now()), "run": run_id}, layout.heartbeat)

    return runs.Heartbeat(beat)


def _finished_runs(repo: Pruned) -> set:
    """Runs that made a snapshot, including snapshots forgotten since."""
    done = {s.doc.get("run") for s in repo.snapshots()}
    for evs in repo.events().values():
        done.update(ev.get("run") for ev in evs if ev.get("type") == "forget")
    return done


def _active_runs(repo: Pruned, now: _dt.datetime) -> list[str]:
    """Runs that may still be writing: no snapshot names them, they are younger than
    RUN_TIMEOUT, and they are not known dead (a process of this host that is gone)."""
    beats = _latest_beats(repo, now)
    return [layout.last(info.key) for info in _unfinished(repo) if _live(repo, info, now, beats)]


def _latest_beats(repo: Pruned, now: _dt.datetime) -> dict[str, _dt.datetime]:
    """run id -> its latest heartbeat's time (the later of the time it carries and the time
    storage stored it); beats dated over 10 minutes ahead of `now` are not believed."""
    latest: dict[str, _dt.datetime] = {}
    for info, doc in repo.records.scan(rec.PRUNE, layout.BEATS):
        try:
            seen = max(t for t in (from_iso(doc["time"]), info.modified) if t is not None)
        except (ValueError, KeyError, TypeError):
            continue
        run = doc["run"]
        if seen <= now + clockguard.TOLERANCE and (run not in latest or seen > latest[run]):
            latest[run] = seen
    return latest


def _unfinished(repo: Pruned) -> list:
    finished = _finished_runs(repo)
    return [info for info in repo.records.listing(layout.RUNNING) if layout.last(info.key) not in finished]


def _live(repo: Pruned, info, now: _dt.datetime, beats: dict[str, _dt.datetime], here: runs.Host | None = None) -> bool:
    started = info.modified
    try:
        doc = repo.records.get(rec.PRUNE, info.key)
        started = from_iso(doc["time"])
    except (AmberError, ValueError, KeyError, TypeError):
        doc = None
    verdict = (here or runs.Host.current()).verdict(doc) if doc is not None else None
    if verdict is False:
        return False
    if started is None:
        return True
    if verdict is None:  # another host's run: its heartbeats tell, where it writes them
        silent = runs.silent_too_long(doc or {}, max(started, beats.get(layout.last(info.key), started)), now)
        if silent is not None:
            return not silent
    return now - started < RUN_TIMEOUT


# -- prune -----------------------------------------------------------------------


@dataclass
class _Survey:
    """What prune found: stored packs, each pack's indexed blobs, and what to delete or repack."""

    stored: dict = field(default_factory=dict)  # pack id -> ObjectInfo
    by_pack: dict = field(default_factory=dict)  # pack id -> its indexed blob ids
    used: set = field(default_factory=set)  # blob ids the snapshots use
    doomed: set = field(default_factory=set)
    repack: list = field(default_factory=list)


def prune(repo: Pruned, *, dry_run: bool = False, trust_clock: bool = False) -> PruneReport:
    preflight.require_sound(repo, "prune")  # a dry run shows the same refusal
    rep = PruneReport(dry_run=dry_run)
    now = repo.clock.now()
    survey = _survey(repo, now, rep)
    _spare_protected(repo, survey, now, rep)
    clock = {} if dry_run else clockguard.check_before_delete(repo, _lock_ends(repo, survey), trust_clock)
    if dry_run:
        rep.packs_planned = sorted(p.hex() for p in survey.doomed)
        rep.packs_repacked = sorted(p.hex() for p in survey.repack)
        rep.bytes_freed = sum(survey.stored[p].size for p in survey.doomed)
        return rep
    _plan(repo, survey, now, rep)
    active = _active_runs(repo, now)
    _tombs, plans = load_records(repo.records)
    if active:
        rep.waiting_for_runs = active
        rep.packs_planned = sorted(p.hex() for ps in plans.values() for p in ps)
        return rep
    _carry_out(repo, plans, now, rep)
    _clean_index_files(repo, rep)
    _clean_runs(repo, now, rep)
    repo.load_index(force=True)  # forget the entries of the packs just deleted
    if rep.packs_deleted or rep.packs_repacked or rep.index_deleted:
        repo.log_event(
            "prune",
            None,
            None,
            **clock,
            packs_deleted=rep.packs_deleted,
            bytes_freed=rep.bytes_freed,
            packs_repacked=rep.packs_repacked,
            index_deleted=rep.index_deleted,
            packs_kept_locked=sorted(rep.packs_locked),
        )
    return rep


def _survey(repo: Pruned, now: _dt.datetime, rep: PruneReport) -> _Survey:
    """Packs no snapshot uses are doomed; packs at least REPACK_UNUSED unused are repacked."""
    repo.event_store.forget()
    snaps = _fresh_snapshots(repo)  # before the index: a snapshot is stored after its index files
    repo.load_index(force=True)  # another client may have written or pruned since this one looked
    sv = _Survey(used=_used_blobs(repo, snaps))
    for info in repo.records.listing(layout.DATA):
        pid = layout.pack_id(info.key)
        if pid is not None:
            sv.stored[pid] = info
    rep.packs_total = len(sv.stored)
    for bid, e in repo.blobs.index.items():
        sv.by_pack.setdefault(e.pack, []).append(bid)
    running = bool(_active_runs(repo, now))
    damaged = {p for packs in repo.blobs.damaged.values() for p in packs}
    for pid, info in sv.stored.items():
        blobs = sv.by_pack.get(pid)
        if not blobs:  # in no index: left by an interrupted backup (or one still writing)
            if not running or (info.modified is not None and now - info.modified > RUN_TIMEOUT):
                sv.doomed.add(pid)
            continue
        live = [b for b in blobs if b in sv.used]
        if not live:
            sv.doomed.add(pid)
        elif _repackable(repo, pid, live, len(blobs), pid in damaged):
            sv.repack.append(pid)
    return sv


def _repackable(repo: Pruned, pid: bytes, live: list[bytes], indexed: int, damaged: bool) -> bool:
    """Repack a pack REPACK_UNUSED unused, or holding a damaged blob copy (repo/damage.py): its
    good blobs move to a new pack and the damaged one goes, once its locks allow. Never a pack
    whose damaged copy of a live blob is the only one: that copy cannot be read."""
    if not damaged and 1 - len(live) / indexed < REPACK_UNUSED:
        return False
    return not any(repo.blobs.is_damaged(b, pid) for b in live)


def _lock_ends(repo: Pruned, sv: _Survey) -> dict:
    """pack -> when its own retention ended (None: never locked), for every pack this prune
    would delete (an earlier plan's packs, still unused, are doomed again by the survey):
    what the clock guard checks."""
    out = {}
    for pid in sorted(sv.doomed | set(sv.repack)):
        try:
            r = repo.storage.stat(layout.pack(pid)).retention
        except NotFound:
            continue
        out[f"pack {pid.hex()[:16]}"] = r.until if r is not None else None
    return out


def _fresh_snapshots(repo: Pruned) -> list:
    repo.snapshot_store.forget()
    return repo.snapshots()


def _used_blobs(repo: Pruned, snaps: list) -> set[bytes]:
    """What the stored snapshots use (read afresh), and whatever can still be found of those the
    audit log says are locked or held but whose documents are gone: their data stays."""
    try:
        used = repo.referenced_blobs(snaps)
    except IntegrityError as e:
        raise IntegrityError(
            f"prune refused, nothing was deleted: the snapshots' trees cannot all be read ({e})", remedy="check"
        ) from None
    _require_indexed(repo, used)
    stored = {s.id for s in snaps} | set(repo.snapshot_store.bad)
    for tree in replay.protected_but_gone(repo.audit.honoured([]), stored, repo.clock.now()).values():
        used |= _reachable(repo, tree)
    return used


def _require_indexed(repo: Pruned, used: set[bytes]) -> None:
    """Refuse (IntegrityError) when a stored snapshot uses a blob no index names: its pack would
    look left over by a crash and be deleted. That happens only when an index file was deleted
    or a tombstone planted (or the repository is damaged): never prune around it."""
    index = repo.blobs.index
    missing = sorted(b.hex() for b in used if b not in index)
    if missing:
        raise IntegrityError(
            f"prune refused, nothing was deleted: {len(missing)} blob(s) the snapshots use are in no "
            f"index (first: {', '.join(m[:16] for m in missing[:3])}): an index file was deleted or a "
            "tombstone planted, and their packs would look unused",
            remedy="check",
        )


def _reachable(repo: Pruned, tree: str) -> set[bytes]:
    """Every blob below `tree` that can still be read; a folder whose tree is lost is skipped."""
    used = {bytes.fromhex(tree)}
    for _path, node in repo.walk(tree, errors=[]):
        if node["type"] == "dir" and node.get("subtree"):
            used.add(bytes.fromhex(node["subtree"]))
        elif node["type"] == "file":
            used.update(bytes.fromhex(h) for h in node.get("content") or ())
    return used


def _spare_protected(repo: Pruned, sv: _Survey, now: _dt.datetime, rep: PruneReport) -> None:
    """Keep what storage still protects: prune waits out locks."""
    for pid in sorted(sv.doomed | set(sv.repack)):
        why = _protected(repo, layout.pack(pid), now)
        if why:
            rep.packs_locked[pid.hex()] = why
            sv.doomed.discard(pid)
            if pid in sv.repack:
                sv.repack.remove(pid)


def _plan(repo: Pruned, sv: _Survey, now: _dt.datetime, rep: PruneReport) -> None:
    """Phase 1: repack the live blobs of partly used packs, then plan every doomed pack."""
    if sv.repack:
        with repo.blobs.session() as session:
            for pid in sv.repack:
                _repack(repo, session, pid, [b for b in sv.by_pack[pid] if b in sv.used])
                rep.packs_repacked.append(pid.hex())
            session.flush()
        sv.doomed |= set(sv.repack)
    if sv.doomed:
        doc = {"v": 1, "time": to_iso(now), "packs": sorted(p.hex() for p in sv.doomed)}
        repo.records.put(rec.PRUNE, doc, layout.prune_plan)


def _carry_out(repo: Pruned, plans: dict[str, set[bytes]], now: _dt.datetime, rep: PruneReport) -> None:
    """Phase 2: tombstone and delete what each plan names and no snapshot uses now."""
    snaps = _fresh_snapshots(repo)  # again, before the index: a backup may have finished meanwhile
    repo.load_index(force=True)  # and repacks moved blobs
    index = repo.blobs.index
    live = {index[b].pack for b in _used_blobs(repo, snaps) if b in index}
    for key, packs in sorted(plans.items()):
        gone = sorted(p for p in packs if p not in live and not _protected(repo, layout.pack(p), now))
        if gone:
            doc = {"v": 1, "time": to_iso(now), "packs": [p.hex() for p in gone]}
            repo.records.put(rec.PRUNE, doc, layout.prune_tomb)
            for p in gone:
                _delete_pack(repo, p, rep)
        repo.storage.delete(key)


def _delete_pack(repo: Pruned, pid: bytes, rep: PruneReport) -> None:
    key = layout.pack(pid)
    try:
        size = repo.storage.stat(key).size
        repo.storage.delete(key)
    except NotFound:
        return
    except Locked as e:
        rep.packs_locked[pid.hex()] = str(e)
        return
    rep.packs_deleted.append(pid.hex())
    rep.bytes_freed += size
    repo.blobs.forget_pack(pid)
    try:  # its parity goes with it (its retention is the pack's)
        rep.bytes_freed += repo.storage.stat(layout.parity(pid)).size
        repo.storage.delete(layout.parity(pid))
    except (NotFound, Locked):
        pass


def _protected(repo: Pruned, key: str, now: _dt.datetime) -> str | None:
    try:
        info = repo.storage.stat(key)
    except NotFound:
        return None
    if info.legal_hold:
        return "legal hold"
    if info.retention is not None and info.retention.active(now):
        return f"{info.retention.mode} retention until {to_iso(info.retention.until)}"
    return None


def _repack(repo: Pruned, session, pid: bytes, live: list[bytes]) -> None:
    blobs = repo.blobs
    data = repo.storage.get(layout.pack(pid))
    for bid in live:
        e = blobs.index[bid]
        try:
            plain = blobs.open_blob(bid, e, data[e.offset : e.offset + e.length])
        except IntegrityError as err:
            blobs.note_damage(bid, pid, str(err))  # recorded when the command ends: a backup heals it
            raise
        del blobs.index[bid]  # so add() stores it again, in a new pack
        session.add(e.type, bid, plain)


def _clean_index_files(repo: Pruned, rep: PruneReport) -> None:
    tombs, _plans = load_records(repo.records)
    files: dict[str, set[bytes]] = {}
    for pack, keys in repo.blobs.pack_index_files.items():
        for k in keys:
            files.setdefault(k, set()).add(pack)
    for key, packs in files.items():
        if packs and packs <= tombs:
            try:
                repo.storage.delete(key)
                rep.index_deleted.append(key)
            except (Locked, NotFound):
                continue


def _clean_runs(repo: Pruned, now: _dt.datetime, rep: PruneReport) -> None:
    finished = _finished_runs(repo)
    here = runs.Host.current()
    beats = _latest_beats(repo, now)
    kept = set()
    for info in repo.records.listing(layout.RUNNING):
        rid = layout.last(info.key)
        old = info.modified is not None and now - info.modified > RUN_TIMEOUT
        if rid in finished or old or not _live(repo, info, now, beats, here):
            try:
                repo.storage.delete(info.key)
                rep.runs_cleaned += 1
                continue
            except (Locked, NotFound):
                pass
        kept.add(rid)
    for info, doc in repo.records.scan(rec.PRUNE, layout.BEATS):  # of runs no marker announces now
        if doc["run"] not in kept:
            try:
                repo.storage.delete(info.key)
            except (Locked, NotFound):
                continue
