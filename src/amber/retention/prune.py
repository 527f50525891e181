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
import json
import os
from dataclasses import dataclass, field

import blake3

from ..clock import from_iso, to_iso
from ..crypto.aead import KIND_PRUNE
from ..errors import AmberError, IntegrityError, Locked, NotFound
from ..repo.blobs import pack_key
from . import clockguard

RUN_TIMEOUT = _dt.timedelta(hours=24)   # a backup running longer is presumed dead
REPACK_UNUSED = 0.25                    # repack a pack once this share of it is unused


@dataclass
class PruneReport:
    dry_run: bool = False
    packs_total: int = 0
    packs_deleted: list = field(default_factory=list)
    bytes_freed: int = 0
    packs_planned: list = field(default_factory=list)
    packs_repacked: list = field(default_factory=list)
    packs_locked: dict = field(default_factory=dict)   # pack -> why it stays
    index_deleted: list = field(default_factory=list)
    waiting_for_runs: list = field(default_factory=list)
    runs_cleaned: int = 0

    def to_json(self) -> dict:
        return {"dry_run": self.dry_run, "packs_total": self.packs_total,
                "packs_deleted": self.packs_deleted, "bytes_freed": self.bytes_freed,
                "packs_planned": self.packs_planned, "packs_repacked": self.packs_repacked,
                "packs_locked": self.packs_locked, "index_deleted": self.index_deleted,
                "waiting_for_runs": self.waiting_for_runs}


# -- records -----------------------------------------------------------------------


def _seal(repo, doc: dict) -> tuple[str, bytes]:
    raw = repo.sealer.seal(KIND_PRUNE, json.dumps(doc, sort_keys=True).encode())
    return blake3.blake3(raw).hexdigest(), raw


def read_record(repo, key: str) -> dict:
    """A prune plan, tombstone or run marker, authenticated and checked against its name."""
    raw = repo.storage.get(key)
    if blake3.blake3(raw).hexdigest() != key.rsplit("/", 1)[-1].split("-", 1)[-1]:
        raise IntegrityError(f"{key}: content does not match its name")
    try:
        doc = json.loads(repo.sealer.open(KIND_PRUNE, raw, key))
    except ValueError:
        raise IntegrityError(f"{key}: not valid JSON") from None
    if not isinstance(doc, dict):
        raise IntegrityError(f"{key}: not a prune record")
    return doc


def load_records(repo) -> tuple[set[bytes], dict[str, set[bytes]]]:
    """(tombstoned packs, plan key -> planned packs)."""
    tombs: set[bytes] = set()
    plans: dict[str, set[bytes]] = {}
    for info in repo.storage.list("prune/"):
        name = info.key.rsplit("/", 1)[-1]
        try:
            packs = {bytes.fromhex(p) for p in read_record(repo, info.key)["packs"]}
        except (IntegrityError, NotFound, ValueError, KeyError, TypeError):
            continue
        if name.startswith("tomb-"):
            tombs |= packs
        elif name.startswith("plan-"):
            plans[info.key] = packs
    return tombs, plans


def start_run(repo) -> str:
    """Announce a backup before it reads the index (see the module docstring)."""
    doc = {"v": 1, "time": to_iso(repo.clock.now()), "pid": os.getpid()}
    rid, raw = _seal(repo, doc)
    repo.storage.put(f"running/{rid}", raw)
    return rid


def _finished_runs(repo) -> set:
    """Runs that made a snapshot, including snapshots forgotten since."""
    done = {s.doc.get("run") for s in repo.snapshots()}
    for evs in repo.events().values():
        done.update(ev.get("run") for ev in evs if ev.get("type") == "forget")
    return done


def _active_runs(repo, now) -> list[str]:
    finished = _finished_runs(repo)
    active = []
    for info in repo.storage.list("running/"):
        rid = info.key.split("/", 1)[1]
        if rid in finished:
            continue
        started = info.modified
        try:
            started = from_iso(read_record(repo, info.key)["time"])
        except (AmberError, ValueError, KeyError, TypeError):
            pass
        if started is None or now - started < RUN_TIMEOUT:
            active.append(rid)
    return active


# -- prune -----------------------------------------------------------------------


def used_blobs(repo, snaps) -> set[bytes]:
    return repo.referenced_blobs(snaps)


def prune(repo, *, dry_run: bool = False, trust_clock: bool = False) -> PruneReport:
    rep = PruneReport(dry_run=dry_run)
    now = repo.clock.now()
    if not dry_run:
        clockguard.check_before_delete(repo, trust_clock)
    repo.load_index(force=True)  # another client may have written or pruned since this one looked
    store = repo.store
    repo.invalidate_snapshots()
    snaps = repo.snapshots()
    used = used_blobs(repo, snaps)
    stored = {bytes.fromhex(i.key.rsplit("/", 1)[-1]): i for i in repo.storage.list("data/")}
    rep.packs_total = len(stored)
    by_pack: dict[bytes, list[bytes]] = {}
    for bid, e in store.index.items():
        by_pack.setdefault(e.pack, []).append(bid)

    doomed: set[bytes] = set()
    repack: list[bytes] = []
    running = bool(_active_runs(repo, now))
    for pid, info in stored.items():
        blobs = by_pack.get(pid)
        if not blobs:  # in no index: left by an interrupted backup (or one still writing)
            if not running or (info.modified is not None and now - info.modified > RUN_TIMEOUT):
                doomed.add(pid)
            continue
        live = [b for b in blobs if b in used]
        if not live:
            doomed.add(pid)
        elif 1 - len(live) / len(blobs) >= REPACK_UNUSED:
            repack.append(pid)

    # keep what storage still protects: prune waits out locks
    for pid in sorted(doomed | set(repack)):
        why = _protected(repo, pack_key(pid), now)
        if why:
            rep.packs_locked[pid.hex()] = why
            doomed.discard(pid)
            if pid in repack:
                repack.remove(pid)

    if dry_run:
        rep.packs_planned = sorted(p.hex() for p in doomed)
        rep.packs_repacked = sorted(p.hex() for p in repack)
        rep.bytes_freed = sum(stored[p].size for p in doomed)
        return rep

    # phase 1: repack the live blobs of partly used packs, then plan every doomed pack
    if repack:
        for pid in repack:
            _repack(repo, pid, [b for b in by_pack[pid] if b in used])
            rep.packs_repacked.append(pid.hex())
        store.flush()
        doomed |= set(repack)
    plan_key = None
    if doomed:
        pid_, raw = _seal(repo, {"v": 1, "time": to_iso(now), "packs": sorted(p.hex() for p in doomed)})
        plan_key = f"prune/plan-{pid_}"
        repo.storage.put(plan_key, raw)

    # phase 2: carry out every plan no running backup can still depend on
    active = _active_runs(repo, now)
    _tombs, plans = load_records(repo)
    if active:
        rep.waiting_for_runs = active
        rep.packs_planned = sorted(p.hex() for ps in plans.values() for p in ps)
        return rep
    repo.invalidate_snapshots()
    repo.load_index(force=True)  # again: a backup may have finished meanwhile, and repacks moved blobs
    used = used_blobs(repo, repo.snapshots())
    live = {store.index[b].pack for b in used if b in store.index}
    for key, packs in sorted(plans.items()):
        gone = sorted(p for p in packs if p not in live and not _protected(repo, pack_key(p), now))
        if gone:
            tid, raw = _seal(repo, {"v": 1, "time": to_iso(now), "packs": [p.hex() for p in gone]})
            repo.storage.put(f"prune/tomb-{tid}", raw)
            for p in gone:
                try:
                    size = repo.storage.stat(pack_key(p)).size
                    repo.storage.delete(pack_key(p))
                except NotFound:
                    continue
                except Locked as e:
                    rep.packs_locked[p.hex()] = str(e)
                    continue
                rep.packs_deleted.append(p.hex())
                rep.bytes_freed += size
                store.tombstones.add(p)
        repo.storage.delete(key)
    _clean_index_files(repo, rep)
    _clean_runs(repo, now, rep)
    repo.load_index(force=True)  # forget the entries of the packs just deleted
    if rep.packs_deleted or rep.packs_repacked or rep.index_deleted:
        repo.log_event("prune", None, None, trust_clock=trust_clock, packs_deleted=rep.packs_deleted,
                       bytes_freed=rep.bytes_freed,
                       packs_repacked=rep.packs_repacked, index_deleted=rep.index_deleted,
                       packs_kept_locked=sorted(rep.packs_locked))
    return rep


def _protected(repo, key: str, now) -> str | None:
    try:
        info = repo.storage.stat(key)
    except NotFound:
        return None
    if info.legal_hold:
        return "legal hold"
    if info.retention is not None and info.retention.active(now):
        return f"{info.retention.mode} retention until {to_iso(info.retention.until)}"
    return None


def _repack(repo, pid: bytes, live: list[bytes]) -> None:
    store = repo.store
    data = repo.storage.get(pack_key(pid))
    for bid in live:
        e = store.index[bid]
        plain = store.open_blob(bid, e, data[e.offset:e.offset + e.length])
        del store.index[bid]  # so add() stores it again, in a new pack
        store.add(e.type, bid, plain)


def _clean_index_files(repo, rep: PruneReport) -> None:
    tombs, _plans = load_records(repo)
    store = repo.store
    files: dict[str, set[bytes]] = {}
    for pack, keys in store.pack_index_files.items():
        for k in keys:
            files.setdefault(k, set()).add(pack)
    for key, packs in files.items():
        if packs and packs <= tombs:
            try:
                repo.storage.delete(key)
                rep.index_deleted.append(key)
            except (Locked, NotFound):
                continue


def _clean_runs(repo, now, rep: PruneReport) -> None:
    finished = _finished_runs(repo)
    for info in repo.storage.list("running/"):
        rid = info.key.split("/", 1)[1]
        old = info.modified is not None and now - info.modified > RUN_TIMEOUT
        if rid in finished or old:
            try:
                repo.storage.delete(info.key)
                rep.runs_cleaned += 1
            except (Locked, NotFound):
                continue
