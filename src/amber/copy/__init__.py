"""`amber copy`: snapshots of another repository copied into this one, verified blob by blob.

Per source snapshot not copied yet (a destination snapshot's `copy_of` names
each one copied; those are skipped, so a second run moves nothing):

1. Its proof in the source's audit log (event, inclusion proof, signed
   checkpoint) is fetched and verified first: a source whose log does not
   prove the snapshot is refused before anything is written.
2. A run marker (as a backup writes one, so prune spares what the copy
   deduplicates against), then the destination's index is read afresh (for
   later snapshots of the same run, only when prune records changed).
3. Blobs. When both repositories share the id key (`init --copy-params-from`),
   blob ids are equal: every blob of the snapshot the destination lacks is
   read from the source pack-region-wise (one ranged read per region of at
   most `MAX_SPAN`, as a restore reads), opened and checked against its keyed
   id, and sealed again for the destination without being recompressed.
   Otherwise every file is read from the source, checked against its
   SHA-256, cut with the destination's chunker and stored, and its trees are
   built anew. Index files are written every `PACKS_PER_INDEX` packs, so a
   copy that is killed leaves what it stored findable by the next run.
4. The snapshot document (the source's, with the destination's tree, lock,
   run and `copy_of`), the destination's locks extended over what it needs,
   a legal hold where the source snapshot is held, its `snapshot` event and a
   `copy` event carrying the source's proof.

A blob, tree or proof of the source that does not verify refuses that
snapshot (named, IntegrityError) and the copy goes on with the rest; the bad
blob is never stored. There is no global lock: two copies, or a copy and a
backup, race only on put-if-absent objects.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable

from ..audit.snapshot_events import record_snapshots
from ..clock import add_duration, to_iso
from ..errors import AmberError, IntegrityError, NotFound, UsageError
from ..evidence.copychain import source_proof
from ..format import layout
from ..repo.snapshots import Snapshot
from ..retention.locks import extend_objects, hold, needed_objects
from ..retention.prune import start_run
from ..retention.state import Protection
from ..storage.base import COMPLIANCE, GOVERNANCE, Retention
from ..version import __version__
from .mover import Mover
from .rechunk import Rechunker
from .target import CopyRepo, CopyReport

# the source's `clock_jump` stays with its `snapshot` event (in the copy event): it is of the source's clock
DOC_FIELDS = ("time", "hostname", "username", "uid", "gid", "paths", "tags", "excludes", "summary")

__all__ = ["CopyReport", "CopyRepo", "copies_of", "copy_snapshots", "lock_for", "select"]


def select(
    source: CopyRepo,
    refs: Iterable[str],
    hosts: Iterable[str] = (),
    tags: Iterable[str] = (),
    paths: Iterable[str] = (),
) -> list[Snapshot]:
    """The source snapshots to copy, as restic selects them: without `refs` every snapshot
    matching the filters (repo/selection.py: host any given; tags all of one list given; paths
    every one given); with
    `refs` those named, where `latest` is the newest snapshot matching the filters."""
    matching = source.snapshots(hosts=tuple(hosts), tags=tuple(tags), paths=tuple(paths))
    refs = list(refs)
    if not refs:
        return matching
    out: dict[str, Snapshot] = {}
    for ref in refs:
        if ref == "latest":
            if not matching:
                raise NotFound("no snapshot matches the filters given for 'latest'")
            snap = matching[-1]  # snapshots() lists oldest first
        else:
            snap = source.find_snapshot(ref)
        out.setdefault(snap.id, snap)
    return list(out.values())


def copies_of(dest: CopyRepo, source_id: str) -> dict[str, str]:
    """Source snapshot id -> destination snapshot id, for every copy of `source_id`'s snapshots
    still stored: named by the copies' `copy_of`, or by their `copy` events (which a write-only
    key reads, where it cannot open a snapshot document)."""
    out: dict[str, str] = {}
    stored: set[str] = set()
    for s in dest.snapshots():
        stored.add(s.id)
        origin = s.doc.get("copy_of")
        if isinstance(origin, dict) and origin.get("repository") == source_id:
            out.setdefault(str(origin.get("snapshot")), s.id)
    for ev, _raw in dest.audit.entries():
        d = ev.get("details") or {}
        if ev.get("type") == "copy" and d.get("source_repository") == source_id and ev.get("snapshot") in stored:
            out.setdefault(str(d.get("source_snapshot")), ev["snapshot"])
    return out


def copy_snapshots(
    dest: CopyRepo,
    source: CopyRepo,
    snaps: list[Snapshot],
    retain: Retention | None = None,
    report: CopyReport | None = None,
) -> CopyReport:
    """Copy `snaps` of `source` into `dest` (see the module docstring); `retain` replaces the
    lock each copy would get. Refused snapshots are in the report, not raised."""
    report = report if report is not None else CopyReport()
    report.rechunked = source.keys.ids != dest.keys.ids
    if report.rechunked:
        dest.warn(
            "the repositories' id keys differ (the destination was not made with --copy-params-from): "
            "every file is read and chunked again, and its trees are built anew"
        )
    done = copies_of(dest, source.id)
    source.load_index()
    index = _Freshness()
    for snap in snaps:
        if snap.id in done:
            report.skipped[snap.id] = done[snap.id]
            continue
        try:
            report.copied[snap.id] = _copy_one(dest, source, snap, retain, report, index)
        except (IntegrityError, NotFound) as e:
            report.refused[snap.id] = f"snapshot {snap.short_id}: {e}"
    return report


class _Freshness:
    """Whether the destination's index must be read again before the next snapshot's copy:
    at the first, and whenever prune records changed since (a prune deleted packs, or plans
    to), so no copy deduplicates against a pack that is gone. Index files other clients
    wrote meanwhile only cost deduplication, never correctness."""

    def __init__(self) -> None:
        self.seen: list[str] | None = None

    def load(self, dest: CopyRepo) -> None:
        records = sorted(info.key for info in dest.storage.list(layout.PRUNE))
        if records != self.seen:
            dest.load_index(force=True)
            self.seen = records


def _copy_one(
    dest: CopyRepo, source: CopyRepo, snap: Snapshot, retain: Retention | None, report: CopyReport, index: _Freshness
) -> str:
    """One snapshot, start to finish; returns the destination's snapshot id."""
    proof = source_proof(source, snap)
    prot = source.protection(snap)
    retention = retain or lock_for(dest, prot)
    if retention is not None and not dest.storage.capabilities.object_lock:
        raise UsageError(f"{dest.storage.describe()} cannot enforce retention locks")
    if prot.hold and not dest.storage.capabilities.legal_hold:
        raise UsageError(f"snapshot {snap.short_id} is held, and {dest.storage.describe()} cannot hold")
    dest.audit.check_history()
    run_id = start_run(dest)  # before the index is read: see retention/prune.py
    index.load(dest)
    # a write-only key cannot read the copy's trees back: it notes the packs they use as it goes
    dest.blobs.track_packs(not dest.keys.can_read)
    try:
        return _store(dest, source, snap, retention, prot, proof, run_id, report)
    except (IntegrityError, NotFound):
        _end_run(dest, run_id)
        raise
    finally:
        dest.blobs.track_packs(False)
        dest.snapshot_store.packs = None


def _store(
    dest: CopyRepo,
    source: CopyRepo,
    snap: Snapshot,
    retention: Retention | None,
    prot: Protection,
    proof: dict,
    run_id: str,
    report: CopyReport,
) -> str:
    """Blobs, snapshot document, locks, hold and events of one copy; its id."""
    with dest.blobs.session(retention) as session:
        mover = Mover(dest, source, session, report)
        try:
            if report.rechunked:
                tree, content_root = Rechunker(mover).tree(snap.tree)
            else:
                tree, content_root = snap.tree, snap.content_root
                mover.move(source.trees.referenced_blobs([snap.tree]))
        except IntegrityError:
            session.flush()  # what verified is kept: the next run need not move it again
            report.bytes_added += session.bytes_added
            raise
        except BaseException:  # interrupted (Ctrl-C), or storage failed: index what is stored
            _index_stored(dest)
            raise
        session.flush()
        report.bytes_added += session.bytes_added
    doc = {k: snap.doc[k] for k in DOC_FIELDS if k in snap.doc}
    doc.update(
        v=1,
        tree=tree,
        content_root=content_root,
        parent=None,
        program=f"amber {__version__}",
        run=run_id,
        retention={"mode": retention.mode, "until": to_iso(retention.until)} if retention else None,
        copy_of={"repository": source.id, "snapshot": snap.id},
    )
    used = dest.blobs.packs_used() if dest.blobs.used_packs is not None else None
    dest.snapshot_store.packs = sorted(p.hex() for p in used) if used is not None else None
    sid = dest.snapshot_store.save(doc, retention)
    copied = dest.snapshot_store.load(sid)
    if retention is not None:  # blobs the destination had already must live as long as the copy
        extend_objects(dest, needed_objects(dest, copied, used), retention)
    record_snapshots(dest.audit, dest.snapshot_store, sid, retention)
    if prot.hold:
        hold(dest, copied, prot.hold_reason or f"held in repository {source.id}")
    dest.log_event(
        "copy",
        sid,
        retention,
        rechunked=report.rechunked,
        content_root=content_root,
        source_content_root=snap.content_root,
        **proof,
    )
    return sid


def _index_stored(dest: CopyRepo) -> None:
    """An index file for the packs already stored, so the next run finds them; a failure
    here leaves them to the next run's dedup as after a crash (FORMAT.md §13)."""
    try:
        dest.blobs.write_index()
    except Exception:  # the interruption being raised is what the user must see
        pass


def _end_run(dest: CopyRepo, run_id: str) -> None:
    """A refused copy will name nothing it stored: its run marker goes, so it does not hold
    back prune for a day (storage that may only add keeps it, as after a crash)."""
    try:
        dest.storage.delete(layout.run_marker(run_id))
    except AmberError:
        pass


def lock_for(dest: CopyRepo, prot: Protection) -> Retention | None:
    """The lock a copy gets: the latest end of the source snapshot's remaining lock, the
    destination's default retention and its minimum; compliance if any of them is."""
    now = dest.clock.now()
    ends: list[Retention] = []
    if prot.locked(now):
        ends.append(Retention(prot.mode or GOVERNANCE, prot.until))  # type: ignore[arg-type]  # locked
    default = dest.config.get("default_retention")
    if default:
        ends.append(Retention(default["mode"], add_duration(now, default["duration"])))
    least = dest.settings.min_seconds()
    if least:
        ends.append(Retention(GOVERNANCE, now + _dt.timedelta(seconds=least)))
    if not ends:
        return None
    mode = COMPLIANCE if any(r.mode == COMPLIANCE for r in ends) else GOVERNANCE
    return Retention(mode, max(r.until for r in ends))
