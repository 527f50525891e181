"""`amber repair packs` and `amber repair snapshots`: healing by adding, never by rewriting.

A blob is **lost** when a snapshot needs it and no copy of it can be read: its pack is gone
from storage, every copy is recorded damaged (repo/damage.py), or no index names it. Stored
objects are write-once and locked ones cannot even be deleted, so nothing is repaired in
place:

- `repair packs` stores lost blobs again, in new packs, from another repository whose id key
  is this one's (made with `init --copy-params-from`, or a copy of it) or from files on disk
  cut with this repository's chunker, matching by keyed blob id: a blob whose bytes do not
  hash to its id is refused, whatever the source says. The new packs take the protection of
  the locked and held snapshots that need them.
- `repair snapshots` writes, for each snapshot that still needs lost blobs, a new snapshot
  without the files (and folders) whose data is lost, listing every one, tagged `repaired`
  and naming the original; the original stays as it is (locked ones cannot change anyway).

Both record what they did in the audit log (`repair` events).
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import pyfastcdc

from .audit.log import AuditLog
from .audit.snapshot_events import record_snapshots
from .clock import to_iso
from .crypto.keys import MasterKeys
from .errors import AmberError, IntegrityError, NotAllowed, UsageError
from .format import layout
from .format import tree as treefmt
from .format.pack import BLOB_DATA, BLOB_TREE
from .repo import records as rec
from .repo import reindex
from .repo.blobs import BlobStore
from .repo.snapshots import Snapshot, SnapshotStore
from .retention import locks
from .storage.base import Retention

MAX_LISTED = 1000  # dropped files an event names; the command lists them all


class Repaired(locks.RetentionTarget, Protocol):
    """What repair reads and writes."""

    keys: MasterKeys
    blobs: BlobStore
    snapshot_store: SnapshotStore
    audit: AuditLog
    records: rec.Records
    index_errors: list[str]

    def load_tree(self, tree_id: str) -> list[dict]: ...

    def log_event(self, kind: str, snapshot: str | None = None, lock: Retention | None = None, **details) -> dict: ...

    def record_damage(self, found_by: str) -> int: ...

    def warn(self, message: str) -> None: ...


# -- what is lost -----------------------------------------------------------------------


def lost_blobs(repo: Repaired, snaps: list[Snapshot]) -> dict[bytes, str]:
    """Every blob the snapshots need that has no readable copy, with why. A folder whose tree is
    lost hides what lies below it: repairing the tree first lets a second pass see the rest."""
    repo.load_index(force=True)
    stored = _stored_packs(repo)
    blobs = repo.blobs
    lost: dict[bytes, str] = {}

    def why_lost(bid: bytes) -> str | None:
        pack = blobs.index.pack_of(bid)
        if pack is None:
            return "no index names it"
        if pack not in stored:
            blobs.note_damage(bid, pack, f"blob {bid.hex()[:16]}: pack {pack.hex()[:16]} is missing")
            return f"its pack {pack.hex()[:16]} is missing"
        if blobs.is_damaged(bid, pack):
            return f"its copy in pack {pack.hex()[:16]} is damaged"
        return None

    seen: set[bytes] = set()
    for bid in _needed(repo, snaps, seen):
        if bid not in lost:
            why = why_lost(bid)
            if why is not None:
                lost[bid] = why
    return lost


def _stored_packs(repo: Repaired) -> set[bytes]:
    out = set()
    for info in repo.storage.list(layout.DATA):
        try:
            out.add(bytes.fromhex(layout.last(info.key)))
        except ValueError:
            continue  # junk under data/: check reports it
    return out


def _needed(repo: Repaired, snaps: list[Snapshot], seen: set[bytes]) -> Iterator[bytes]:
    """Every tree and content blob below the snapshots (each once); a tree that cannot be read
    is yielded, and what is below it is not."""
    todo = [s.tree for s in snaps]
    while todo:
        tree_id = todo.pop()
        bid = bytes.fromhex(tree_id)
        if bid in seen:
            continue
        seen.add(bid)
        yield bid
        try:
            nodes = repo.load_tree(tree_id)
        except AmberError:
            continue
        for node in nodes:
            if node["type"] == "dir" and node.get("subtree"):
                todo.append(node["subtree"])
            elif node["type"] == "file":
                for h in node.get("content") or ():
                    b = bytes.fromhex(h)
                    if b not in seen:
                        seen.add(b)
                        yield b


# -- repair packs -----------------------------------------------------------------------


@dataclass
class PacksReport:
    lost: int = 0  # blobs lost when the repair began
    repaired: list[str] = field(default_factory=list)  # blob ids stored again
    refused: list[str] = field(default_factory=list)  # "blob: why" a source offered wrong bytes for
    remaining: list[str] = field(default_factory=list)  # "blob: why" still lost
    packs_written: int = 0
    source: str = ""
    dry_run: bool = False

    def to_json(self) -> dict:
        return {
            "lost": self.lost,
            "repaired": self.repaired,
            "refused": self.refused,
            "remaining": self.remaining,
            "packs_written": self.packs_written,
            "source": self.source,
            "dry_run": self.dry_run,
        }


Offer = Callable[[dict[bytes, str], "_Taker"], None]


def repair_packs(repo: Repaired, offer: Offer, source: str, *, dry_run: bool = False) -> PacksReport:
    """Store lost blobs again from what `offer(lost, taker)` finds: it calls `taker.store(type,
    id, plaintext)` for each candidate (refused when the bytes do not hash to the id) and
    `taker.refuse(id, why)` for a candidate its source could not give intact. Repeats while it
    heals trees (a healed tree reveals the blobs below it)."""
    report = PacksReport(source=source, dry_run=dry_run)
    snaps = [s for s in repo.snapshot_store.all() if s.readable]
    lost = lost_blobs(repo, snaps)
    report.lost = len(lost)
    if dry_run or not lost:
        report.remaining = [f"{b.hex()}: {why}" for b, why in sorted(lost.items())]
        return report
    taker = _Taker(repo)
    new_packs: set[bytes] = set()
    for _round in range(64):  # each round heals at least one level of folders, or stops
        taker.wanted = {b: why for b, why in lost.items() if b not in taker.repaired}
        if not taker.wanted:
            break
        before, stored = len(taker.repaired), _stored_packs(repo)
        with repo.blobs.session() as session:
            taker.session = session
            offer(taker.wanted, taker)
            session.flush()
        repo.blobs.take_heals()  # the new packs are protected below, by the snapshots that need them
        new_packs |= _stored_packs(repo) - stored
        if len(taker.repaired) == before:
            break
        lost = lost_blobs(repo, snaps)
    refused, repaired = taker.refused, taker.repaired
    lost = {b: why for b, why in lost.items() if b not in repaired}
    for problem in protect(repo, snaps, new_packs):
        repo.warn(problem)
    repo.record_damage("repair packs")
    report.repaired = sorted(b.hex() for b in repaired)
    report.refused = [f"{b.hex()}: {why}" for b, why in sorted(refused.items()) if b not in repaired]
    report.remaining = [f"{b.hex()}: {why}" for b, why in sorted(lost.items())]
    report.packs_written = len(new_packs)
    repo.log_event(
        "repair",
        what="packs",
        source=source,
        lost=report.lost,
        repaired=len(report.repaired),
        refused=len(report.refused),
        remaining=len(report.remaining),
        packs=sorted(p.hex() for p in new_packs)[:MAX_LISTED],
    )
    return report


class _Taker:
    """What a source offers, taken only for blobs still wanted and only when the bytes hash to the id."""

    def __init__(self, repo: Repaired) -> None:
        self.repo = repo
        self.wanted: dict[bytes, str] = {}
        self.repaired: set[bytes] = set()
        self.refused: dict[bytes, str] = {}
        self.session = None

    def store(self, blob_type: int, bid: bytes, data: bytes) -> bool:
        if bid not in self.wanted or bid in self.repaired:
            return False
        if self.repo.keys.blob_id(data) != bid:
            self.refused[bid] = "the source's bytes do not hash to this id"
            return False
        self.session.add(blob_type, bid, data)  # type: ignore[union-attr]
        self.repaired.add(bid)
        self.refused.pop(bid, None)
        return True

    def refuse(self, bid: bytes, why: str) -> None:
        if bid in self.wanted and bid not in self.repaired:
            self.refused[bid] = why


def protect(repo: Repaired, snaps: list[Snapshot], new_packs: set[bytes]) -> list[str]:
    """The new packs (and their index files) get the lock and hold of every snapshot that needs them."""
    if not new_packs:
        return []
    problems: list[str] = []
    now = repo.clock.now()
    keys_of_new = {layout.pack(p) for p in new_packs}
    if repo.blobs.parity_percent:
        keys_of_new |= {layout.parity(p) for p in new_packs}
    for snap in snaps:
        p = locks.protection(repo, snap)
        if not p.locked(now) and not p.hold:
            continue
        try:
            needed = locks.needed_objects(repo, snap)
        except AmberError:  # some of what it needs is still lost: protect all that was added
            needed = keys_of_new
        mine = {k for k in needed if k in keys_of_new}
        mine |= {f for p in new_packs if layout.pack(p) in mine for f in repo.blobs.pack_index_files.get(p, ())}
        if not mine:
            continue
        try:
            if p.locked(now):
                locks.extend_objects(repo, mine, Retention(p.mode, p.until))  # type: ignore[arg-type]
            if p.hold and repo.storage.capabilities.legal_hold:
                for key in sorted(mine):
                    repo.storage.set_legal_hold(key, True)
        except AmberError as e:
            problems.append(f"snapshot {snap.short_id}: its repaired packs could not be protected: {e}")
    return problems


def offer_from_repository(source: Repaired) -> Offer:
    """Lost blobs read from another repository by id (its reads verify each blob against its
    keyed id, which is this repository's too)."""

    def offer(wanted: dict[bytes, str], taker: _Taker) -> None:
        source.load_index()
        for bid in sorted(wanted):
            entry = source.blobs.index.get(bid)
            if entry is None:
                continue
            try:
                data = source.blobs.read(bid)
            except IntegrityError as e:  # damaged there too, or other bytes under that id: still lost here
                taker.refuse(bid, f"the source's copy: {e}")
                continue
            taker.store(entry.type, bid, data)

    return offer


def offer_from_path(keys: MasterKeys, chunker: dict, top: str) -> Offer:
    """Lost data blobs cut from the files under `top` with this repository's chunker; a folder's
    tree cannot be made from files (its nodes hold times and ids): trees need a repository."""

    def offer(wanted: dict[bytes, str], taker: _Taker) -> None:
        cdc = pyfastcdc.FastCDC(
            chunker["avg"], min_size=chunker["min"], max_size=chunker["max"], seed=keys.chunker_seed
        )
        left = set(wanted)
        for path in _files(top):
            if not left:
                return
            try:
                with open(path, "rb", buffering=0) as f:
                    for c in cdc.cut_stream(f):
                        data = bytes(c.data)
                        bid = keys.blob_id(data)
                        if bid in left and taker.store(BLOB_DATA, bid, data):
                            left.discard(bid)
            except OSError:
                continue  # unreadable files cannot help

    return offer


def _files(top: str) -> Iterator[str]:
    if os.path.isfile(top):
        yield top
        return
    if not os.path.isdir(top):
        raise UsageError(f"--from-path {top}: no such file or folder")
    for folder, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                yield path


def require_same_ids(repo: Repaired, source: Repaired) -> None:
    """A source whose id key differs names other blobs by other ids: nothing to match."""
    if not source.keys.can_read:
        raise NotAllowed("the source was opened with a write-only key: it cannot be read from")
    if source.keys.ids != repo.keys.ids:
        raise UsageError(
            "the source repository's blob ids are not this one's (different id keys): repair packs --from "
            "needs a repository made with init --copy-params-from, or a copy of this one; "
            "or give the files with --from-path"
        )


# -- repair index -----------------------------------------------------------------------


def repair_index(repo: Repaired, *, dry_run: bool = False) -> reindex.IndexReport:
    """Index files made again from the headers of the packs no readable index file names; the
    unreadable index files superseded (repo/reindex.py). The new index files take the locks and
    holds of the snapshots whose packs they name."""
    repo.load_index(force=True)
    host = socket.gethostname()

    def record(superseded: list[tuple[str, str, str]], by: list[str]) -> None:
        reindex.supersede(repo.records, to_iso(repo.clock.now()), host, superseded, by)

    report = reindex.rebuild(repo.storage, repo.records, repo.blobs, list(repo.index_errors), record, dry_run=dry_run)
    if dry_run:
        return report
    repo.load_index(force=True)
    snaps = [s for s in repo.snapshot_store.all() if s.readable]
    for problem in protect(repo, snaps, {bytes.fromhex(p) for p in report.packs_indexed}):
        repo.warn(problem)
    repo.log_event(
        "repair",
        what="index",
        packs_indexed=len(report.packs_indexed),
        index_files=report.index_files[:MAX_LISTED],
        superseded=report.superseded[:MAX_LISTED],
        damaged=len(report.damaged),
    )
    return report


# -- repair snapshots -------------------------------------------------------------------


@dataclass
class SnapshotRepair:
    original: str
    dropped: list[str] = field(default_factory=list)  # paths of files and folders left out
    snapshot: str | None = None  # the new snapshot (None: nothing was lost, or a dry run)

    def to_json(self) -> dict:
        return {"original": self.original, "snapshot": self.snapshot, "dropped": self.dropped}


def repair_snapshots(repo: Repaired, snaps: list[Snapshot], *, dry_run: bool = False) -> list[SnapshotRepair]:
    """For each snapshot that needs lost blobs, a new snapshot without what is lost (listed)."""
    lost = set(lost_blobs(repo, snaps))
    out = []
    for snap in snaps:
        fix = SnapshotRepair(snap.id)
        with repo.blobs.session() as session:
            root = _rebuild(repo, session, snap.tree, "", lost, fix.dropped, dry_run)
            if root is not None and fix.dropped and not dry_run:
                session.flush()
        if not fix.dropped:
            out.append(fix)
            continue
        if root is None:  # the root folder itself is lost: nothing is left to keep
            fix.dropped = ["/"]
        elif not dry_run:
            fix.snapshot = _save_repaired(repo, snap, root, fix.dropped)
        out.append(fix)
    repo.record_damage("repair snapshots")
    return out


def _rebuild(repo: Repaired, session, tree_id: str, prefix: str, lost: set[bytes], dropped: list[str], dry_run: bool):
    """(new tree id, digest) of the folder without its lost files (None if its tree is lost);
    the same ids when nothing below it is lost."""
    if bytes.fromhex(tree_id) in lost:
        return None
    try:
        nodes = repo.load_tree(tree_id)
    except AmberError:
        return None
    kept, changed = [], False
    for node in nodes:
        path = f"{prefix}/{node['name']}"
        if node["type"] == "file" and any(bytes.fromhex(h) in lost for h in node.get("content") or ()):
            dropped.append(path)
            changed = True
            continue
        if node["type"] == "dir" and node.get("subtree"):
            sub = _rebuild(repo, session, node["subtree"], path, lost, dropped, dry_run)
            if sub is None:
                dropped.append(path + "/")
                changed = True
                continue
            if sub[0] != node["subtree"]:
                node = dict(node, subtree=sub[0], digest=sub[1])
                changed = True
        kept.append(node)
    raw = treefmt.encode(kept)
    if not changed:
        return tree_id, treefmt.digest(raw)
    bid = repo.keys.blob_id(raw)
    if not dry_run:
        session.add(BLOB_TREE, bid, raw)
    return bid.hex(), treefmt.digest(raw)


def _save_repaired(repo: Repaired, snap: Snapshot, root: tuple[str, str], dropped: list[str]) -> str:
    """The repaired snapshot: the original's document with the new tree, tagged `repaired`, locked
    and held as the original is; its `snapshot` event, then a `repair` event naming what was left out."""
    now = repo.clock.now()
    p = locks.protection(repo, snap)
    retention = Retention(p.mode, p.until) if p.locked(now) else None  # type: ignore[arg-type]
    doc = {k: v for k, v in snap.doc.items() if k not in ("tree", "content_root", "retention")}
    # dated just after its original: it takes the original's place in listings and as `latest`
    doc["time"] = to_iso(snap.time + _dt.timedelta(microseconds=1))
    doc.update(
        tree=root[0],
        content_root=root[1],
        tags=sorted(set(snap.tags) | {"repaired"}),
        repaired_from=snap.id,
        retention={"mode": retention.mode, "until": to_iso(retention.until)} if retention else None,
    )
    sid = repo.snapshot_store.save(doc, retention)
    if retention is not None:
        locks.extend_objects(repo, locks.needed_objects(repo, repo.snapshot_store.load(sid)), retention)
    record_snapshots(repo.audit, repo.snapshot_store, sid, retention)
    repo.log_event(
        "repair",
        sid,
        retention,
        what="snapshot",
        original=snap.id,
        dropped=len(dropped),
        dropped_paths=dropped[:MAX_LISTED],
    )
    if p.hold:
        locks.hold(repo, repo.snapshot_store.load(sid), f"repaired from held snapshot {snap.short_id}")
    return sid
