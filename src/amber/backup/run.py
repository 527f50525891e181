"""One backup, start to finish: lock, run marker, index, walk, snapshot, locks, audit event.

The order makes an interrupted backup harmless (FORMAT.md §13): the run
marker before the index is read, packs and index files before the snapshot,
the snapshot before the locks that extend what it reuses, and the audit
event last, so nothing ever names what is not stored.
"""

from __future__ import annotations

import os
import pwd
import socket
import time
from collections.abc import Callable
from typing import Protocol

from ..audit.log import AuditLog
from ..audit.snapshot_events import record_snapshots
from ..clock import add_duration, to_iso
from ..crypto.keys import MasterKeys
from ..errors import AmberError, UsageError
from ..format import layout
from ..format import tree as treefmt
from ..repo import adopt
from ..repo.snapshots import Snapshot
from ..retention import clockguard, tiers
from ..retention.locks import carry_protection, extend_objects, needed_objects
from ..retention.prune import Pruned, heartbeat, start_run
from ..storage.base import COMPLIANCE, GOVERNANCE, Retention
from ..version import __version__
from .anomaly import Anomalies, evaluate
from .archiver import Archiver, BackupResult, walk_roots
from .changes import CacheParent, Changes, TreeChanges
from .command import SourceCommand
from .filescache import FilesCache
from .select import Selection
from .source import normalize_paths


class BackupTarget(Pruned, Protocol):
    """What a backup writes into."""

    config: dict
    keys: MasterKeys
    audit: AuditLog
    warn: Callable[[str], None]

    @property
    def id(self) -> str: ...

    def cache_dir(self) -> str: ...


def backup(repo: BackupTarget, paths, *, stdin_command=None, **options) -> BackupResult:
    """Back up `paths`, standard input, or what `stdin_command` (an argv) prints; see
    `_backup` for the options. The command's output is a snapshot only if it exits 0
    (command.py).

    Snapshot documents are read through local copies (SnapshotStore.cached): a backup
    reads the snapshots several times (its parent, the clock guard, the audit events)
    and would otherwise fetch every one of them from storage each time."""
    with repo.snapshot_store.cached(os.path.join(repo.cache_dir(), "snapshots")):
        if stdin_command is None:
            return _backup(repo, paths, **options)
        with SourceCommand(stdin_command) as cmd:
            options.update(stdin=cmd.stdout, stdin_done=cmd.finish)
            return _backup(repo, paths, **options)


def _backup(
    repo: BackupTarget,
    paths,
    *,
    tags=(),
    host=None,
    excludes=(),
    selection: Selection | None = None,
    stdin=None,
    stdin_name=None,
    stdin_done: Callable[[], None] | None = None,
    retention=None,
    stats=None,
    workers=None,
    use_cache=True,
    processes=None,
    listing: list | None = None,
    exclude_nodump=False,
) -> BackupResult:
    """`selection`: the exclusion rules (select.py; else `excludes` alone); `stdin_done`:
    called once standard input is stored, before anything names it (a failure there
    makes no snapshot); `listing`: filled with (status, path, size) of each file."""
    t0 = time.monotonic()
    started = repo.clock.now()
    selection = selection if selection is not None else Selection(excludes=tuple(e.rstrip("/") for e in excludes))
    norm, stdin_name = _sources(paths, stdin, stdin_name)
    retention = _retention_for(repo, retention, started)
    snap_paths = norm if stdin is None else ["/" + stdin_name]
    tier, retention = _tier_lock(repo, retention, started, host or socket.gethostname(), snap_paths)
    parent = _parent(repo, host or socket.gethostname(), snap_paths)
    repo.audit.check_history()  # refuse to write into a rolled-back or forked repository
    jump = _clock_jump(repo)
    run_id = start_run(repo)  # before reading the index: see retention/prune.py
    repo.load_index(force=True)
    cache = FilesCache(repo.cache_dir() if use_cache and stdin is None else None, norm)
    changes = _changes(repo, parent if stdin is None else None, cache, stats)
    changes.listing = listing  # each file as the counts see it (backup/changes.py)
    # a write-only key cannot read the trees back: it notes the packs the snapshot uses as it goes
    repo.blobs.track_packs(not repo.keys.can_read)
    beat = heartbeat(repo, run_id).start()  # keeps this run respected by other hosts' prunes
    try:
        with repo.blobs.session(retention) as session:
            resumed = _resume(repo, run_id)
            arch = Archiver(
                session,
                repo.keys,
                repo.config["chunker"],
                selection=selection,
                files_cache=cache,
                stats=stats,
                workers=workers,
                processes=processes,
                changes=changes,
                exclude_nodump=exclude_nodump,
            )
            try:
                if stdin is not None:
                    top, snap_paths = [arch.save_stdin(stdin, stdin_name)], ["/" + stdin_name]
                    if stdin_done is not None:
                        stdin_done()
                else:
                    top, snap_paths = walk_roots(arch, norm), norm
                root_tree, content_root = arch.save_tree(top)
                session.flush()
            finally:
                arch.close()
        changes.finish(root_tree)  # the new trees are stored and indexed: compare them with the parent's
        doc = _snapshot_doc(repo, started, host, tags, selection.excludes, snap_paths, run_id, retention, parent)
        if jump is not None:
            doc["clock_jump"] = jump.to_json()
        if tier is not None:
            doc["lock_tier"] = tier
        summary = arch.stats.summary(session.bytes_added, time.monotonic() - t0)
        doc.update(tree=root_tree, content_root=content_root, summary=summary)
        used = repo.blobs.packs_used() if repo.blobs.used_packs is not None else None
        repo.snapshot_store.packs = sorted(p.hex() for p in used) if used is not None else None
        sid = repo.snapshot_store.save(doc, retention)
        if retention is not None:  # data reused from older snapshots must live as long as this one
            extend_objects(repo, needed_objects(repo, repo.snapshot_store.load(sid), used), retention)
        for problem in carry_protection(repo, repo.blobs.take_heals()):  # older snapshots read healed blobs
            repo.warn(problem)
        record_snapshots(repo.audit, repo.snapshot_store, sid, retention)
    except BaseException:
        cache.discard()  # the previous run's cache stays
        raise
    finally:
        beat.stop()
        repo.blobs.track_packs(False)
        repo.snapshot_store.packs = None
    cache.save()
    anomalies = _anomalies(repo, parent, changes) if stdin is None else None
    return BackupResult(sid, arch.stats, session.bytes_added, time.monotonic() - t0, resumed, anomalies)


def _parent(repo: BackupTarget, hostname: str, paths: list[str]) -> Snapshot | None:
    """The latest snapshot of the same host and paths: what a backup is compared with."""
    return next((s for s in reversed(repo.snapshots()) if s.hostname == hostname and s.paths == paths), None)


def _changes(repo: BackupTarget, parent: Snapshot | None, cache: FilesCache, stats) -> Changes:
    """What the walk compares with: the parent's trees, or (a write-only key, which cannot read
    them) the files cache of the previous backup here; nothing without a parent."""
    ratio = repo.blobs.stored_sizes
    if parent is None:
        return Changes(None, stats, ratio)
    if parent.readable:
        return TreeChanges(repo.trees, parent.tree, stats, ratio)
    if cache.present:
        return Changes(CacheParent(cache), stats, ratio)
    return Changes(
        None,
        stats,
        ratio,
        "nothing: a write-only key cannot read the parent's files, and this machine has no files cache "
        "of a previous backup of these paths to compare with",
    )


def _anomalies(repo: BackupTarget, parent: Snapshot | None, changes: Changes) -> Anomalies | None:
    """The signals measured against the parent and the reasons for an alarm (backup/anomaly.py)."""
    if parent is None:
        return None
    settings = getattr(repo, "settings", None)
    limits = settings.anomaly_thresholds if settings is not None else None
    found = evaluate(parent.id, changes.measured, limits or {})
    if not changes.measures:  # only ransom notes, anywhere in the tree, can still be seen
        return Anomalies(parent.id, {"ransom_notes": found.signals["ransom_notes"]}, found.reasons, found.unmeasured)
    return found


def _resume(repo: BackupTarget, run_id: str) -> tuple[int, int]:
    """Reuse what an interrupted backup stored: when a run marker other than this run's is
    named by no snapshot, index the packs no index file names (repo/adopt.py), so their data
    is not uploaded again. Without such a marker nothing is listed: the common case costs one
    listing of `running/`. Returns (packs, bytes) reused."""
    if not _interrupted_runs(repo, run_id):
        return 0, 0
    try:
        found = adopt.unindexed(repo.blobs)
        done = adopt.adopt(repo.blobs, found) if found else adopt.Adopted()
    except AmberError as e:  # the packs stay in memory's index; their index file is retried at the end
        repo.warn(f"the packs of an interrupted backup could not all be reused: {e}")
        return 0, 0
    for problem in done.skipped[:10]:
        repo.warn(problem)
    return done.packs, done.bytes


def _interrupted_runs(repo: BackupTarget, run_id: str) -> bool:
    """Whether a run marker besides `run_id` is named by no snapshot (a run interrupted, or
    one still going on beside this one)."""
    others = {layout.last(info.key) for info in repo.records.listing(layout.RUNNING)} - {run_id}
    if not others:
        return False
    try:
        finished = {s.doc.get("run") for s in repo.snapshots()}
    except AmberError:
        return True  # snapshots this key cannot read: look at the packs anyway
    return bool(others - finished)


def _clock_jump(repo: BackupTarget) -> clockguard.Jump | None:
    """A clock moved forward further than the shortest active lock, recorded in the snapshot
    (and so in its audit event): deleting anything locked until a time inside the jump then
    needs --trust-clock (retention/clockguard.py)."""
    jump = clockguard.current_jump(repo)
    if jump is not None:
        repo.warn(
            f"this backup is made under {jump.describe()}: either that much time passed with no "
            "write to the repository, or the clock was moved. The snapshot records it, and nothing "
            "locked until a time inside the jump is deleted until an administrator checks the "
            "clock and passes --trust-clock"
        )
    return jump


def _sources(paths, stdin, stdin_name: str | None) -> tuple[list[str], str]:
    """The normalized paths to walk, or the name data from standard input gets."""
    if stdin is None and not paths:
        raise UsageError("nothing to back up", remedy="backup-paths")
    if stdin is None:
        return normalize_paths(paths), ""
    name = (stdin_name or "stdin").strip("/")
    if not treefmt.valid_name(name):
        raise UsageError(f"{name!r} is not a valid file name for data read from standard input", remedy="stdin-name")
    return [], name


def _snapshot_doc(
    repo: BackupTarget,
    started,
    host,
    tags,
    excludes,
    paths: list[str],
    run_id: str,
    retention: Retention | None,
    parent: Snapshot | None,
) -> dict:
    """The snapshot document, but for its tree, content root and summary."""
    hostname = host or socket.gethostname()
    return {
        "v": 1,
        "time": to_iso(started),
        "hostname": hostname,
        "username": _username(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "paths": paths,
        "tags": sorted(set(tags)),
        "excludes": list(excludes),
        "parent": parent.id if parent is not None else None,
        "program": f"amber {__version__}",
        "run": run_id,
        "retention": {"mode": retention.mode, "until": to_iso(retention.until)} if retention else None,
    }


def _retention_for(repo: BackupTarget, retention: Retention | None, started) -> Retention | None:
    """The lock a new snapshot gets: the one asked for, else the repository's default."""
    if retention is None:
        default = repo.config.get("default_retention")
        if not default:
            return None
        retention = Retention(default["mode"], add_duration(started, default["duration"]))
    if not repo.storage.capabilities.object_lock:
        raise UsageError(f"{repo.storage.describe()} cannot enforce retention locks")
    if retention.until <= started:
        raise UsageError(f"the retention would end in the past ({to_iso(retention.until)})")
    return retention


def _tier_lock(
    repo: BackupTarget, retention: Retention | None, started, hostname: str, paths: list[str]
) -> tuple[str | None, Retention | None]:
    """(the lock-policy tier this snapshot fills, its lock): the first snapshot of a UTC day,
    week, month or year of this host and paths (forget's groups) gets the longest tier it fills
    (retention/tiers.py); the lock asked for (`--retain`, else the default) stands where it is
    longer, and the mode is compliance if either is."""
    policy = getattr(repo, "settings", None) and repo.settings.lock_policy
    if not policy:
        return None, retention
    earlier = [s.time for s in repo.snapshots() if s.hostname == hostname and s.paths == paths]
    tier, until = tiers.lock_for(started, tiers.filled(started, earlier, policy), policy)
    if until is None:
        return None, retention
    if not repo.storage.capabilities.object_lock:
        raise UsageError(f"{repo.storage.describe()} cannot enforce the lock policy's locks")
    mode = COMPLIANCE if COMPLIANCE in (policy["mode"], retention.mode if retention else None) else GOVERNANCE
    if retention is not None and retention.until > until:
        until = retention.until
    return tier, Retention(mode, until)


def _username() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())
