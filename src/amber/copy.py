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
import hashlib
import io
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import blake3
import pyfastcdc

from .audit.log import record_snapshots
from .clock import add_duration, to_iso
from .crypto.keys import MasterKeys
from .errors import AmberError, IntegrityError, NotFound, UsageError
from .evidence.copychain import source_proof
from .format import compression as blobfmt
from .format import layout
from .format import tree as treefmt
from .format.pack import BLOB_DATA, BLOB_TREE
from .repo.blobindex import IndexEntry
from .repo.blobs import ENVELOPE_KINDS, WriteSession
from .repo.snapshots import Snapshot
from .repo.trees import Trees
from .retention.locks import extend_objects, hold, needed_objects
from .retention.prune import Pruned, start_run
from .retention.state import Protection
from .storage.base import COMPLIANCE, GOVERNANCE, Retention
from .version import __version__

MAX_SPAN = 4 << 20  # bytes of one ranged read of a source pack (several blobs)
READERS = 4  # threads reading and re-sealing regions
PACKS_PER_INDEX = 4  # an index file at least this often, so a killed copy resumes
READ_WHOLE = 8 << 20  # files up to this size are cut in one piece when re-chunking
DOC_FIELDS = ("time", "hostname", "username", "uid", "gid", "paths", "tags", "excludes", "summary", "clock_jump")


class CopyRepo(Pruned, Protocol):
    """What a copy reads from (the source) and writes into (the destination)."""

    keys: MasterKeys
    trees: Trees
    config: dict
    settings: Any
    warn: Callable[[str], None]

    @property
    def id(self) -> str: ...

    def load_tree(self, tree_id: str) -> list[dict]: ...

    def protection(self, snap: Snapshot) -> Protection: ...

    def find_snapshot(self, ref: str) -> Snapshot: ...

    def copy_file(self, node: dict, out: Any, what: str) -> None: ...


@dataclass
class CopyReport:
    """What a copy did: snapshots copied (source id -> destination id), skipped (copied
    before: source id -> the earlier copy), refused (source id -> why), and what moved."""

    copied: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    rechunked: bool = False
    blobs_copied: int = 0
    bytes_copied: int = 0  # plaintext bytes of the blobs moved
    bytes_added: int = 0  # stored bytes the destination gained

    def to_json(self) -> dict:
        return {
            "copied": [{"source": s, "snapshot": d} for s, d in self.copied.items()],
            "skipped": [{"source": s, "snapshot": d} for s, d in self.skipped.items()],
            "refused": [{"source": s, "error": why} for s, why in self.refused.items()],
            "rechunked": self.rechunked,
            "blobs_copied": self.blobs_copied,
            "bytes_copied": self.bytes_copied,
            "bytes_added": self.bytes_added,
        }


def select(
    source: CopyRepo,
    refs: Iterable[str],
    hosts: Iterable[str] = (),
    tags: Iterable[str] = (),
    paths: Iterable[str] = (),
) -> list[Snapshot]:
    """The source snapshots to copy, as restic selects them: without `refs` every snapshot
    matching the filters (host: any given; tag: any given; path: holds every one given); with
    `refs` those named, where `latest` is the newest snapshot matching the filters."""
    hosts, tags, paths = set(hosts), set(tags), set(paths)
    matching = [
        s
        for s in source.snapshots()
        if (not hosts or s.hostname in hosts)
        and (not tags or tags & set(s.tags))
        and (not paths or paths <= set(s.paths))
    ]
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
        mover = _Mover(dest, source, session, report)
        try:
            if report.rechunked:
                tree, content_root = _Rechunker(mover).tree(snap.tree)
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
    if prot.hold:
        hold(dest, copied, prot.hold_reason or f"held in repository {source.id}")
    record_snapshots(dest.audit, dest.snapshot_store, sid, retention)
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


class _Mover:
    """Blobs from the source's packs into the destination's write session."""

    def __init__(self, dest: CopyRepo, source: CopyRepo, session: WriteSession, report: CopyReport) -> None:
        self.dest, self.source, self.session, self.report = dest, source, session, report
        self._mu = threading.Lock()
        self._indexed_at = dest.blobs.packs_written

    def move(self, blobs: Iterable[bytes]) -> None:
        """Store every blob of `blobs` the destination lacks, read region by region."""
        lookup = self.source.blobs.lookup
        by_pack: dict[bytes, list[tuple[bytes, IndexEntry]]] = {}
        for bid in blobs:
            if not self.session.has(bid):
                e = lookup(bid)
                by_pack.setdefault(e.pack, []).append((bid, e))
        regions = [(pack, r) for pack, items in by_pack.items() for r in _regions(items)]
        errors: list[str] = []
        pool = ThreadPoolExecutor(READERS, thread_name_prefix="amber-copy")
        try:
            for fut in [pool.submit(self._region, pack, items) for pack, items in regions]:
                problem = fut.result()
                if problem:
                    errors.append(problem)
        finally:  # interrupted: the regions not started are dropped, not read
            pool.shutdown(wait=True, cancel_futures=True)
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise IntegrityError(f"the source does not verify: {errors[0]}{more}")

    def _region(self, pack: bytes, items: list[tuple[bytes, IndexEntry]]) -> str | None:
        """Read one region of a source pack and store the blobs that verify; the first
        problem, or None."""
        start = items[0][1].offset
        end = max(e.offset + e.length for _, e in items)
        try:
            region = memoryview(self.source.storage.get(layout.pack(pack), start, end - start))
        except (NotFound, AmberError) as err:
            return f"pack {pack.hex()[:16]}: {err}"
        problem = None
        for bid, e in items:
            try:
                payload = self._open(bid, e, region[e.offset - start : e.offset - start + e.length])
            except IntegrityError as err:
                problem = problem or str(err)  # never stored; the blobs that verify are
                continue
            self.store(e.type, bid, e.comp, e.raw_length, payload)
        return problem

    def _open(self, bid: bytes, e: IndexEntry, sealed: Any) -> bytes:
        """A source blob's compressed payload, after its plaintext was checked against its id."""
        what = f"blob {bid.hex()[:16]} in pack {e.pack.hex()[:16]}"
        if len(sealed) != e.length:
            raise IntegrityError(f"{what}: truncated pack")
        payload = self.source.blobs.content_sealer(e.pack, what).open(ENVELOPE_KINDS[e.type], sealed, what)
        data = blobfmt.decompress(e.comp, payload, e.raw_length, what)
        if blake3.blake3(data, key=self.source.keys.ids).digest() != bid:
            raise IntegrityError(f"{what}: content does not match its id")
        return payload

    def store(self, blob_type: int, bid: bytes, comp: int, raw_length: int, payload: bytes) -> None:
        """Seal a verified payload for the destination and add it (no recompression)."""
        sealed = self.dest.blobs.blob_sealer.seal(ENVELOPE_KINDS[blob_type], payload)
        if self.session.add_sealed(blob_type, bid, comp, raw_length, sealed):
            with self._mu:
                self.report.blobs_copied += 1
                self.report.bytes_copied += raw_length
        self.index_often()

    def add(self, blob_type: int, data: bytes) -> str:
        """Store plaintext under the destination's id (re-chunking); returns the id in hex."""
        bid = self.dest.keys.blob_id(data)
        if self.session.add(blob_type, bid, data):
            with self._mu:
                self.report.blobs_copied += 1
                self.report.bytes_copied += len(data)
        self.index_often()
        return bid.hex()

    def index_often(self) -> None:
        """An index file once PACKS_PER_INDEX packs wait for one: a killed copy then loses
        at most that many packs to the next run's deduplication."""
        blobs = self.dest.blobs
        with self._mu:
            if blobs.packs_written - self._indexed_at < PACKS_PER_INDEX:
                return
            self._indexed_at = blobs.packs_written
        blobs.write_index()


def _regions(items: list[tuple[bytes, IndexEntry]]) -> list[list[tuple[bytes, IndexEntry]]]:
    """A pack's blobs in order of offset, cut into regions of at most MAX_SPAN bytes."""
    items.sort(key=lambda it: it[1].offset)
    out: list[list] = []
    for it in items:
        if out and it[1].offset + it[1].length - out[-1][0][1].offset <= MAX_SPAN:
            out[-1].append(it)
        else:
            out.append([it])
    return out


class _Rechunker:
    """A snapshot's trees built anew for a destination with other keys: every file read from
    the source (checked against its SHA-256), cut with the destination's chunker, stored."""

    def __init__(self, mover: _Mover) -> None:
        self.mover = mover
        chunker = mover.dest.config["chunker"]
        self.min = chunker["min"]
        self.chunker = pyfastcdc.FastCDC(
            chunker["avg"], min_size=chunker["min"], max_size=chunker["max"], seed=mover.dest.keys.chunker_seed
        )

    def tree(self, root: str) -> tuple[str, str]:
        """(tree id, digest) of the rebuilt root tree; post-order on an explicit stack."""
        source = self.mover.source
        stack: list[tuple[list[dict], list[dict]]] = [(source.load_tree(root), [])]
        while True:
            nodes, out = stack[-1]
            if len(out) < len(nodes):
                node = nodes[len(out)]
                if node["type"] == "dir" and node.get("subtree"):
                    stack.append((source.load_tree(node["subtree"]), []))
                    continue
                out.append(self.file(node) if node["type"] == "file" else node)
                continue
            stack.pop()
            raw = treefmt.encode(out)
            tree_id, digest = self.mover.add(BLOB_TREE, raw), treefmt.digest(raw)
            if not stack:
                return tree_id, digest
            parent_nodes, parent_out = stack[-1]
            parent_out.append(dict(parent_nodes[len(parent_out)], subtree=tree_id, digest=digest))

    def file(self, node: dict) -> dict:
        """A file node whose content is stored again, cut with the destination's chunker."""
        content = node.get("content") or []
        if not content:
            return node
        sha = hashlib.sha256()
        stream = _BlobStream(self.mover.source, content, sha)
        if node.get("size", 0) <= READ_WHOLE:
            data = stream.read_all()
            chunks: Iterable = (data,) if len(data) <= self.min else (c.data for c in self.chunker.cut_buf(data))
        else:
            chunks = (bytes(c.data) for c in self.chunker.cut_stream(stream))
        ids = [self.mover.add(BLOB_DATA, bytes(c)) for c in chunks]
        if sha.hexdigest() != node.get("sha256"):
            raise IntegrityError(f"file {node['name']!r}: its content does not match its SHA-256 in the source")
        return dict(node, content=ids)


class _BlobStream(io.RawIOBase):
    """A file's content read blob by blob from the source (each verified), hashed as it goes."""

    def __init__(self, source: CopyRepo, content: list[str], sha: Any) -> None:
        self.source, self.ids, self.sha = source, list(content), sha
        self.buf, self.pos = memoryview(b""), 0

    def readable(self) -> bool:
        return True

    def blobs(self) -> Iterable[bytes]:
        """The content's blobs, one after the other (what `read_all` joins)."""
        for hid in self.ids:
            data = self.source.blobs.read(bytes.fromhex(hid))
            self.sha.update(data)
            yield data

    def read_all(self) -> bytes:
        return b"".join(self.blobs())

    def readinto(self, b: Any) -> int:
        if self.pos == len(self.buf):
            if not self.ids:
                return 0
            data = self.source.blobs.read(bytes.fromhex(self.ids.pop(0)))
            self.sha.update(data)
            self.buf, self.pos = memoryview(data), 0
        n = min(len(b), len(self.buf) - self.pos)
        b[:n] = self.buf[self.pos : self.pos + n]
        self.pos += n
        return n
