"""Repository check: structure always, every byte with read_data.

Structure: every index file authenticates; every pack an index names exists;
every snapshot decodes; every tree of every snapshot decodes, its Merkle
digests match, and every blob it references is indexed; lock events, prune
records and run markers authenticate; every object a locked or held
snapshot needs is protected at least as long; the audit log verifies, and
every snapshot matches its event. With read_data: every pack is read whole,
its name checked against its hash, its header and every blob authenticated,
decompressed and checked against its id. Damage is reported by pack, then
traced to the snapshots and files it affects.

Damage heals by adding (repo/damage.py): every damaged blob copy found is
recorded, and the next backup stores those blobs again. A damaged copy of a
blob that has a good copy in another pack is healed: a warning naming both,
not an error. Damage not yet healed stays an error.
"""

from __future__ import annotations

import datetime as _dt
import os
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from .audit.log import AuditLog, VerifyReport
from .audit.snapshot_events import RECOVER_AFTER
from .clock import Clock, from_iso
from .errors import AmberError, NotFound
from .evidence.copychain import copy_proof_problems
from .format import layout
from .format import parity as parityfmt
from .format import tree as treefmt
from .repo import damage as damagerec
from .repo import packcheck
from .repo import records as rec
from .repo import verified as verifiedrec
from .repo.blobs import BlobStore
from .repo.events import EventStore
from .repo.processes import PipePool
from .repo.snapshots import Snapshot, SnapshotStore
from .retention import clockguard, locks, replay
from .storage.base import Storage

MEANING_FILE = "log-meaning.json"  # the fold of every event this client keeps (replay.Meaning)

Progress = Callable[[int, int], None]


class Checked(locks.RetentionTarget, Protocol):
    """What a check reads: everything, through the parts that own it."""

    records: rec.Records
    blobs: BlobStore
    snapshot_store: SnapshotStore
    event_store: EventStore
    audit: AuditLog
    index_errors: list[str]
    damage: damagerec.Recorded

    def load_tree(self, tree_id: str) -> list[dict]: ...

    def walk(self, tree_id: str, prefix: str = "", errors: list[str] | None = None) -> Iterator[tuple[str, dict]]: ...


@dataclass
class CheckReport:
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    snapshots: int = 0
    trees: int = 0
    packs: int = 0
    packs_read: int = 0
    bytes_read: int = 0
    blobs: int = 0
    damaged_packs: list = field(default_factory=list)
    affected: list = field(default_factory=list)  # "snapshot path" lines
    damage_healed: list = field(default_factory=list)  # {"blob", "pack", "copy", "problem"}
    damage_unhealed: list = field(default_factory=list)  # {"blob", "pack", "problem"}
    damage_recorded: int = 0  # damaged blob copies this check recorded
    parity_rebuilt: list = field(default_factory=list)  # packs rebuilt from their parity (hex ids)
    read_subset: str | None = None  # --read-data-subset, as given
    packs_skipped_verified: int = 0  # --since: packs not read, verified clean within the duration
    packs_unindexed: int = 0  # stored packs no index names (an interrupted backup's)
    bytes_unindexed: int = 0
    packs_verified_recorded: int = 0  # packs this check read clean and recorded as verified
    clean_packs: dict = field(default_factory=dict)  # pack -> size, read clean by this check

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "snapshots": self.snapshots,
            "trees": self.trees,
            "packs": self.packs,
            "packs_read": self.packs_read,
            "bytes_read": self.bytes_read,
            "blobs": self.blobs,
            "damaged_packs": self.damaged_packs,
            "affected": self.affected,
            "parity_rebuilt": self.parity_rebuilt,
            "damage_healed": self.damage_healed,
            "damage_unhealed": self.damage_unhealed,
            "damage_recorded": self.damage_recorded,
            "read_subset": self.read_subset,
            "packs_skipped_verified": self.packs_skipped_verified,
            "packs_unindexed": self.packs_unindexed,
            "bytes_unindexed": self.bytes_unindexed,
            "packs_verified_recorded": self.packs_verified_recorded,
        }


def check(
    repo: Checked,
    *,
    read_data: bool = False,
    progress: Progress | None = None,
    subset: verifiedrec.Subset | None = None,
    since: _dt.timedelta | None = None,
    rng: random.Random | None = None,
) -> CheckReport:
    """With `read_data`: read every pack, or those `subset` picks (with `rng`), less those read
    clean within `since` (repo/verified.py); `rep.clean_packs` are the packs read clean."""
    rep = CheckReport(read_subset=subset.text if subset is not None else None)
    # read in the reverse of the order a backup writes (packs, then index files, then the
    # snapshot), so that a backup finishing meanwhile never looks like damage: every snapshot
    # read has its index, and every pack an index names is listed
    snaps = _snapshots(repo.snapshot_store, rep)
    repo.load_index(force=True)
    rep.errors.extend(f"index {e}" for e in repo.index_errors)
    rep.warnings.extend(f"index {e}" for e in getattr(repo, "index_superseded", ()))
    rep.errors.extend(repo.damage.problems)
    damaged_blobs: set[bytes] = set()
    found = damagerec.Found()
    stored_packs = _stored_packs(repo.storage, rep)
    _indexed_packs(repo.blobs, stored_packs, rep, found)
    # every pack is read (decrypting, decompressing and hashing: native code, without the GIL)
    # while this thread checks the trees, the protection and the log (Python)
    # hints only, and only those a check event of the log names (with --since): a bad one is a warning
    named = verifiedrec.named_by(repo.audit.honoured(errors=[])) if since is not None else None
    verified = verifiedrec.load(repo.records, repo.clock.now(), named)
    rep.warnings.extend(f"verification record ignored: {p}" for p in verified.problems)
    to_read = _packs_to_read(repo, stored_packs, (subset, rng), (since, verified), rep, found) if read_data else {}
    reading = (
        _PackReader(repo.storage, repo.blobs, to_read, _entries_of(repo.blobs.index, set(to_read)))
        if read_data
        else None
    )
    if reading is not None and progress:
        progress(0, reading.total)  # the total from the start: the index knows every pack to read
    try:
        _check_trees(repo, snaps, rep, damaged_blobs)
        _check_protection(repo, snaps, rep)
        _check_records(repo, rep)
        _check_overrides(repo, rep)
        if reading is not None:
            reading.report(rep, found, progress)
    finally:
        if reading is not None:
            reading.close()
    if reading is not None and reading.rebuilt:
        _heal_rebuilt(repo, reading.rebuilt, rep)
    _report_damage(repo, found, set(to_read) if read_data else None, rep, damaged_blobs)
    if damaged_blobs:
        _trace(repo, snaps, damaged_blobs, rep)
    return rep


# -- structure ---------------------------------------------------------------------


def _stored_packs(storage: Storage, rep: CheckReport) -> dict[bytes, int]:
    stored: dict[bytes, int] = {}
    for info in storage.list(layout.DATA):
        pid = layout.pack_id(info.key)
        if pid is None:
            rep.warnings.append(f"{info.key}: not a pack name, ignored")
            continue
        stored[pid] = info.size
    rep.packs = len(stored)
    return stored


def _indexed_packs(blobs: BlobStore, stored: dict[bytes, int], rep: CheckReport, found: damagerec.Found) -> None:
    """The packs the index names: missing or truncated ones are damage; unindexed ones a
    warning. Per pack only its blob count and where its last blob ends are kept (memory
    follows the packs, not the blobs); the blobs of a damaged pack are found in a second pass."""
    index = blobs.index
    rep.blobs = len(index)
    counts: dict[bytes, int] = {}
    ends: dict[bytes, int] = {}  # pack -> where its last indexed blob ends
    for e in index.values():
        pack, end = e.pack, e.offset + e.length
        counts[pack] = counts.get(pack, 0) + 1
        if end > ends.get(pack, 0):
            ends[pack] = end
    missing = [pid for pid in counts if pid not in stored]
    for pid in missing:
        found.pack(pid, f"pack {pid.hex()} is indexed but missing ({counts[pid]} blobs lost)")
    short = {pid: stored[pid] for pid in counts if pid in stored and stored[pid] < ends[pid] + 4}
    for pid, size in short.items():
        found.pack(pid, f"pack {pid.hex()} is {size} bytes, but its index needs at least {ends[pid] + 4} (truncated)")
    if missing or short:
        for pid, entries in _entries_of(index, {*missing, *short}).items():
            for bid, _t, _c, offset, length, _raw in entries:
                if pid in missing:
                    blobs.note_damage(bid, pid, f"blob {bid.hex()[:16]}: pack {pid.hex()[:16]} is missing")
                elif offset + length > short[pid]:
                    blobs.note_damage(bid, pid, f"blob {bid.hex()[:16]} in pack {pid.hex()[:16]}: truncated pack")
    unindexed = sorted(pid for pid in stored if pid not in counts and pid not in blobs.pack_index_files)
    if unindexed:
        rep.packs_unindexed, rep.bytes_unindexed = len(unindexed), sum(stored[p] for p in unindexed)
        rep.warnings.append(
            f"{len(unindexed)} pack(s), {rep.bytes_unindexed} bytes, are in no index (left by an interrupted "
            "backup: the next backup reuses them, prune removes them once no backup runs): "
            + ", ".join(p.hex() for p in unindexed[:5])
            + (", …" if len(unindexed) > 5 else "")
        )


def _entries_of(index, packs: set[bytes]) -> dict[bytes, list[tuple]]:
    """The blobs of `packs` as the index has them: pack -> [(id, type, compression, offset,
    length, raw length)]."""
    out: dict[bytes, list[tuple]] = {}
    if not packs:
        return out
    for bid, e in index.items():
        if e.pack in packs:
            out.setdefault(e.pack, []).append((bid, e.type, e.comp, e.offset, e.length, e.raw_length))
    return out


def _packs_to_read(
    repo: Checked,
    stored: dict[bytes, int],
    picking: tuple[verifiedrec.Subset | None, random.Random | None],
    recent: tuple[_dt.timedelta | None, verifiedrec.Verified],
    rep: CheckReport,
    found: damagerec.Found,
) -> dict[bytes, int]:
    """The packs to read (`verifiedrec.choose`; `picking`: subset and randomness, `recent`:
    since and the records). A pack a damage record names, or this check already found
    damaged, is read whatever the records say."""
    suspect = {p for _b, p in repo.damage.notes} | {p for _b, p in repo.blobs.found_damage} | set(found.problems)
    chosen, rep.packs_skipped_verified = verifiedrec.choose(stored, picking, recent, suspect, repo.clock.now())
    return chosen


def _snapshots(store: SnapshotStore, rep: CheckReport) -> list[Snapshot]:
    snaps, errors = store.scan()
    rep.errors.extend(errors)
    rep.snapshots = len(snaps)
    return snaps


def _check_trees(repo: Checked, snaps: list[Snapshot], rep: CheckReport, damaged: set[bytes]) -> None:
    digests: dict[str, str | None] = {}  # tree id -> its Merkle digest (None if broken)
    for s in snaps:
        if not _is_hex(s.tree):
            rep.errors.append(f"snapshot {s.short_id}: invalid tree id")
            continue
        digest = _tree_digest(repo, s.tree, rep, damaged, digests)
        if digest is not None and digest != s.content_root:
            rep.errors.append(f"snapshot {s.short_id}: content root does not match its trees")


def _tree_digest(
    repo: Checked, root: str, rep: CheckReport, damaged: set[bytes], digests: dict[str, str | None]
) -> str | None:
    """Check every tree below `root` (each once) and return root's digest; iterative, any depth.

    A folder is entered (its tree decoded, its files checked), then left once
    all its subfolders are: only then is its own digest computed and compared
    with what its parent's node says."""
    index = repo.blobs.index
    has_all = index.has_all_hex
    stack: list[tuple[str, str, list[dict] | None]] = [(root, "", None)]
    while stack:
        tree_id, where, nodes = stack.pop()
        if nodes is not None:  # leaving: every subfolder is done
            _compare_subfolders(nodes, where, rep, digests)
            digests[tree_id] = treefmt.digest(treefmt.encode(nodes))
            continue
        if tree_id in digests:
            continue
        digests[tree_id] = None
        try:
            nodes = repo.load_tree(tree_id)
        except AmberError as e:
            rep.errors.append(f"tree {tree_id[:16]} at {where or '/'}: {e}")
            damaged.add(bytes.fromhex(tree_id))
            continue
        rep.trees += 1
        stack.append((tree_id, where, nodes))
        for n in nodes:
            path = f"{where}/{n['name']}"
            if n["type"] == "dir":
                sub = n.get("subtree")
                if not _is_hex(sub):
                    rep.errors.append(f"{path}: folder without a valid subtree")
                elif sub not in digests:
                    stack.append((sub, path, None))
            elif n["type"] == "file":
                content = n.get("content")  # 64 hex digits each: the tree decoded
                if content and not has_all(content):
                    for h in content:
                        if bytes.fromhex(h) not in index:
                            rep.errors.append(f"{path}: blob {h[:16]} is not indexed")
                            break
    return digests.get(root)


def _compare_subfolders(nodes: list[dict], where: str, rep: CheckReport, digests: dict[str, str | None]) -> None:
    for n in nodes:
        if n["type"] == "dir" and _is_hex(n.get("subtree")):
            digest = digests.get(n["subtree"])
            if digest is not None and digest != n.get("digest"):
                rep.errors.append(f"{where}/{n['name']}: Merkle digest does not match its tree")


def _check_protection(repo: Checked, snaps: list[Snapshot], rep: CheckReport) -> None:
    """Events decode, and no object a locked or held snapshot needs is less protected."""
    rep.errors.extend(repo.event_store.problems())
    if not repo.storage.capabilities.object_lock:
        return
    for problem in locks.verify_invariant(repo, snaps, repo.events(), repo.clock.now()):
        if problem.startswith("note: "):
            rep.warnings.append(f"protection: {problem[6:]}")
        else:
            rep.errors.append(f"protection: {problem}")


def _check_records(repo: Checked, rep: CheckReport) -> None:
    """Prune plans, tombstones and run markers authenticate; the audit log verifies."""
    for prefix in (layout.PRUNE, layout.RUNNING, layout.BEATS):
        for _info, _doc in repo.records.scan(rec.PRUNE, prefix, rep.errors):
            pass
    audit = verify_audit_log(repo, remember=False, records_checked=True, full=True)
    known = set(rep.errors)  # an unreadable snapshot is reported once, as the snapshot check found it
    rep.errors.extend(f"audit log: {e}" for e in audit.errors if e not in known)
    rep.warnings.extend(f"audit log: {w}" for w in audit.warnings)


def _check_overrides(repo: Checked, rep: CheckReport) -> None:
    """Overrides are loud: every --bypass-governance and --trust-clock in the audit log and the
    lock records, and every clock jump not yet confirmed, is a warning with a count."""
    rep.warnings.extend(clockguard.override_warnings(repo))


def _is_hex(s) -> bool:
    if not isinstance(s, str) or len(s) != 64:
        return False
    try:
        bytes.fromhex(s)
        return True
    except ValueError:
        return False


# -- the audit log against the snapshots ------------------------------------------------


def verify_audit_log(
    repo: Checked,
    external: bytes | None = None,
    remember: bool = True,
    records_checked: bool = False,
    full: bool = False,
) -> VerifyReport:
    """The log's own proofs and checkpoints (from the remembered checkpoint, or all of them when
    `full`), then every snapshot against its event, then the log's replay (`retention.replay`),
    from the fold of every event (`replay.Meaning`): with `full`, of the events the verification
    read; else the fold this client keeps, brought up to date with the events added since
    (`AuditLog.kept_fold`), so that verifying from a recent checkpoint costs what was added
    since, not the log's length. `records_checked`: the caller checks storage against the lock
    records itself (`check` does), so the replay checks it only where the log says more."""
    rep = repo.audit.verify(external=external, remember=remember, full=full, events=full)
    if full:
        meaning = replay.Meaning.of(repo.audit.origin)
        for ev, _raw in rep.entries:
            meaning.add(ev)
        rep.errors.extend(copy_proof_problems(rep.entries))  # each copy's proof of its original
    else:
        meaning = repo.audit.kept_fold(
            MEANING_FILE, lambda: replay.Meaning.of(repo.audit.origin), replay.load_meaning, replay.save_meaning
        )
    repo.snapshot_store.forget()
    stored = {s.id: s for s in repo.snapshot_store.all()}
    snapshot_links(rep, meaning, stored, repo.snapshot_store.stored_at, repo.clock, set(repo.snapshot_store.bad))
    rep.errors.extend(repo.snapshot_store.errors)
    repo.event_store.forget()
    events = repo.events()
    errors, warnings = replay.replay_problems(
        meaning,
        events,
        set(stored) | set(repo.snapshot_store.bad),
        repo.storage.stat,
        repo.storage.capabilities,
        repo.clock.now(),
        {sid: locks.protection(repo, s, events) for sid, s in stored.items()} if records_checked else None,
    )
    rep.errors.extend(errors)
    rep.warnings.extend(warnings)
    return rep


def snapshot_links(
    rep: VerifyReport,
    meaning: replay.Meaning,
    stored: dict[str, Snapshot],
    stored_at: Callable[[str], _dt.datetime | None],
    clock: Clock,
    unreadable: set[str] = frozenset(),  # type: ignore[assignment]
) -> None:
    """Every stored snapshot has a matching `snapshot` event and no later `forget` event; every
    logged one is still stored (readable or not: `unreadable` ones are reported on their own)
    or was forgotten by a `forget` event."""
    logged, forgotten = meaning.logged, meaning.forgotten
    predates = _predates_log(meaning.first)
    now = clock.now()
    for sid, s in stored.items():
        ev = logged.get(sid)
        if sid in forgotten:
            rep.errors.append(
                f"snapshot {sid[:8]} was forgotten (event {forgotten[sid]} in the audit log) "
                "but is stored again: it was put back behind the log"
            )
        elif ev is None:
            _unlogged(rep, s, predates(s), stored_at(sid), now)
        elif s.readable and (ev.get("content_root") != s.content_root or ev.get("tree") != s.tree):
            rep.errors.append(f"snapshot {sid[:8]} does not match its event {ev.get('seq')} in the audit log")
    for sid, ev in logged.items():
        if sid not in stored and sid not in forgotten and sid not in unreadable:
            rep.errors.append(
                f"snapshot {sid[:8]} (event {ev.get('seq')}) is gone from the repository, but the "
                "log has no forget event for it: it was deleted behind the log"
            )


def _predates_log(first: dict | None) -> Callable[[Snapshot], bool]:
    """Whether a snapshot may have been made before the log began (`first`: the type and
    time of its first event).

    A log that begins with `init` is as old as the repository: nothing can
    predate it; one that begins later was started by an upgrade, and older
    snapshots were made without a log."""
    if first is None:
        return lambda s: True
    if first.get("type") == "init":
        return lambda s: False
    try:
        start = from_iso(first["time"])
    except (KeyError, ValueError, TypeError, AttributeError):
        return lambda s: True
    return lambda s: s.time < start


def _unlogged(
    rep: VerifyReport, s: Snapshot, predates: bool, stored_at: _dt.datetime | None, now: _dt.datetime
) -> None:
    if predates:
        rep.warnings.append(f"snapshot {s.short_id} predates the audit log (made by an earlier version)")
    elif stored_at is not None and now - stored_at <= RECOVER_AFTER:
        rep.warnings.append(
            f"snapshot {s.short_id} has no event in the audit log yet (its backup may still be recording it)"
        )
    else:
        rep.errors.append(
            f"snapshot {s.short_id} has no event in the audit log (a crash before it was "
            "recorded is repaired by the next backup; otherwise it was added behind the log)"
        )


# -- every byte ----------------------------------------------------------------------


class _PackReader:
    """Reads every stored pack whole on threads, from the moment it is made, and checks each
    (repo/packcheck.py) in worker processes when the packs are large enough to repay them,
    else on those threads; `report` then adds what was found to the check's report, pack
    by pack in listing order."""

    def __init__(
        self, storage: Storage, blobs: BlobStore, stored: dict[bytes, int], indexed: dict[bytes, list[tuple]]
    ) -> None:
        keys = blobs.keys
        opening = (keys.data, keys.ids, keys.content_private, blobs.only_sealed)
        self.storage, self.opening = storage, packcheck.Opening.of(*opening)
        self.blobs = blobs
        self.indexed = indexed
        self.total = len(stored)
        workers = max(2, min(4, os.cpu_count() or 2))
        self.procs: PipePool | None = None
        if (os.cpu_count() or 1) > 1 and sum(stored.values()) >= packcheck.PROCESS_AFTER_BYTES:
            try:
                self.procs = packcheck.start(opening, workers)
            except (OSError, ValueError):
                self.procs = None  # no processes here (a sandbox, a frozen binary): threads do it
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="amber-check")
        self.rebuilt: dict[bytes, tuple[bytes, list[tuple[bytes, str]]]] = {}  # pack -> (bytes, damaged blobs)
        self.results = self.pool.map(self._read, list(stored))

    def _read(self, pid: bytes) -> tuple:
        """(pack, its problems, damaged blobs, spare copies, bytes read, rebuilt) for one pack
        read whole (`packcheck.verify_pack`). A damaged pack with parity is rebuilt in memory
        (`rebuilt`: its bytes and how many shards, else None). A pack that cannot be read is
        reported, but its blobs are not recorded damaged: a storage error may pass."""
        key = layout.pack(pid)
        indexed = self.indexed.get(pid, [])
        try:
            data = self.storage.get(key)
        except AmberError as e:
            return pid, [f"cannot read: {e}"], [], [], 0, None
        problems, bad, spares = self._verify(pid, data, indexed)
        rebuilt = None
        if (problems or bad) and indexed:
            rebuilt = self._rebuild(pid, data, indexed)
        return pid, problems, bad, spares, len(data), rebuilt

    def _verify(self, pid: bytes, data: bytes, indexed: list) -> tuple[list[str], list, list[bytes]]:
        writer = self.blobs.pack_writers.get(pid)
        if self.procs is not None:
            return self.procs.submit((pid, data, indexed, writer)).result()
        return packcheck.verify_pack(self.opening, pid, data, indexed, writer)

    def _rebuild(self, pid: bytes, data: bytes, indexed: list) -> tuple[bytes, int] | None:
        """The pack's bytes rebuilt from its parity (format/parity.py) when they then check clean."""
        try:
            raw = self.storage.get(layout.parity(pid))
            fixed, shards = parityfmt.repair(pid, data, raw, f"pack {pid.hex()[:16]}")
        except (AmberError, NotFound):
            return None
        problems, bad, _spares = self._verify(pid, fixed, indexed)
        return (fixed, shards) if not problems and not bad else None

    def report(self, rep: CheckReport, found: damagerec.Found, progress: Progress | None) -> None:
        for pid, problems, bad, spares, n, rebuilt in self.results:
            rep.packs_read += 1
            rep.bytes_read += n
            if n and not problems and not bad and pid not in found.problems:
                rep.clean_packs[pid] = n
            key = layout.pack(pid)
            if rebuilt is not None:  # every blob of the damaged pack is stored again, from these bytes
                why = dict(bad)
                first = (problems + list(why.values()))[0]
                damaged = [(b[0], why.get(b[0], f"in a damaged pack ({first})")) for b in self.indexed.get(pid, [])]
                rep.warnings.append(
                    f"{key}: damaged ({(problems + [why for _b, why in bad])[0]}); {rebuilt[1]} shard(s) "
                    "rebuilt from its parity in memory"
                )
                for bid, why in damaged:
                    self.blobs.note_damage(bid, pid, why)
                self.rebuilt[pid] = (rebuilt[0], damaged)
                rep.parity_rebuilt.append(pid.hex())
                if progress:
                    progress(rep.packs_read, self.total)
                continue
            if pid not in self.indexed and not bad:  # junk no index names: nothing reads it
                rep.warnings.extend(f"{key} (in no index, used by nothing): {p}" for p in problems)
                problems = []
            for p in problems:
                found.pack(pid, f"{key}: {p}", read=n > 0)
            for bid, why in bad:
                found.pack(pid, f"{key}: {why}")
                self.blobs.note_damage(bid, pid, why)
            for bid in spares:
                found.spares.setdefault(bid, set()).add(pid)
            if progress:
                progress(rep.packs_read, self.total)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.procs is not None:
            self.procs.shutdown()


def _heal_rebuilt(repo: Checked, rebuilt: dict[bytes, tuple[bytes, list[tuple[bytes, str]]]], rep: CheckReport) -> None:
    """Store the damaged blobs of packs rebuilt from parity again, in new packs, from the rebuilt
    bytes (re-sealed by this client); the new packs take the damaged packs' protection. A client
    that may not write (a read-only credential) only reports."""
    blobs = repo.blobs
    stored = 0
    try:
        with blobs.session() as session:
            for pid, (data, damaged) in sorted(rebuilt.items()):
                for bid, _why in damaged:
                    e = blobs.index.get(bid)
                    if e is None or e.pack != pid:
                        continue  # another copy is indexed: nothing to heal from here
                    plain = blobs.open_blob(bid, e, memoryview(data)[e.offset : e.offset + e.length])
                    stored += 1 if session.add(e.type, bid, plain) else 0
            session.flush()
        rep.warnings.extend(locks.carry_protection(repo, blobs.take_heals()))
        if stored:
            rep.warnings.append(f"stored {stored} blob(s) of the packs rebuilt from parity again, in new packs")
    except AmberError as e:
        rep.warnings.append(f"the blobs rebuilt from parity could not be stored again: {e}")


def _report_damage(
    repo: Checked, found: damagerec.Found, read: set[bytes] | None, rep: CheckReport, damaged_blobs: set[bytes]
) -> None:
    """Every damaged blob copy, recorded or found now, sorted out (repo/damage.py): damage not
    healed is an error, traced to its files; healed damage a warning naming the good copy.
    Copies in packs prune has deleted since (tombstoned) are history, not damage."""
    gone = repo.blobs.tombstones
    recorded = {pair: why for pair, why in repo.damage.notes.items() if pair[1] not in gone}
    out = damagerec.report(repo.blobs.index, recorded, dict(repo.blobs.found_damage), found, read)
    rep.errors.extend(out.errors)
    rep.warnings.extend(out.warnings)
    rep.damaged_packs.extend(out.damaged_packs)
    rep.damage_healed.extend(out.healed)
    rep.damage_unhealed.extend(out.unhealed)
    damaged_blobs.update(out.unhealed_blobs)


def _trace(repo: Checked, snaps: list[Snapshot], damaged: set[bytes], rep: CheckReport) -> None:
    """Name every snapshot and file that uses a damaged blob."""
    damaged_hex = {b.hex() for b in damaged}
    for s in snaps:
        try:
            for path, node in repo.walk(s.tree):
                if node["type"] == "file" and any(h in damaged_hex for h in node.get("content") or []):
                    rep.affected.append(f"{s.short_id} {path}")
                elif node["type"] == "dir" and node.get("subtree") in damaged_hex:
                    rep.affected.append(f"{s.short_id} {path}/ (folder listing)")
        except AmberError as e:
            rep.affected.append(f"{s.short_id} (partly unreadable: {e})")
    if rep.affected:
        rep.errors.append(
            f"damage affects {len(rep.affected)} file(s) in {len({a.split()[0] for a in rep.affected})} snapshot(s)"
        )
        repaired = {s.doc["repaired_from"][:8]: s.short_id for s in snaps if s.doc.get("repaired_from")}
        for original in sorted({a.split()[0] for a in rep.affected} & set(repaired)):
            rep.warnings.append(
                f"snapshot {original} was repaired as {repaired[original]} (`repair snapshots`), which leaves out "
                "what is lost; the original stays as stored"
            )
