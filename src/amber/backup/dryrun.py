"""`backup --dry-run`: what a backup would store, with nothing written to the repository.

The walk, the files cache's verdicts, chunking, deduplication against the index,
compression and sealing all run as in a backup, so the sizes reported are the ones
a backup would add; but blobs are only counted (`CountingSession`), no run marker,
pack, index file, snapshot or audit event is written, and the files cache is left
as it was.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Protocol

from ..crypto.keys import MasterKeys
from ..repo.blobs import ENVELOPE_KINDS, BlobStore
from ..repo.chunks import seal_chunk
from ..repo.snapshots import Snapshot
from ..repo.trees import Trees
from .archiver import Archiver, BackupResult, BackupStats, walk_roots
from .changes import CacheParent, Changes, TreeParent
from .filescache import FilesCache
from .select import Selection
from .source import normalize_paths


class DryRunTarget(Protocol):
    config: dict
    keys: MasterKeys
    blobs: BlobStore
    trees: Trees

    def load_index(self, force: bool = False) -> object: ...

    def cache_dir(self) -> str: ...

    def snapshots(self) -> list[Snapshot]: ...


class CountingSession:
    """A writing session that stores nothing: each blob the index lacks is sealed to learn
    its stored size, counted once, and dropped."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.blob_key = store.blob_key  # what worker processes seal blobs with
        self.has_all_hex = store.has_all_hex
        self.added = 0
        self._seen: set[bytes] = set()
        self._mu = threading.Lock()

    def has(self, blob_id: bytes) -> bool:
        return blob_id in self._seen or self.store.has(blob_id)

    def _claim(self, blob_id: bytes) -> bool:
        with self._mu:
            if self.has(blob_id):
                return False
            self._seen.add(blob_id)
            return True

    def add(self, blob_type: int, blob_id: bytes, data) -> int:
        if not self._claim(blob_id):
            return 0
        kind = ENVELOPE_KINDS[blob_type]
        size = len(seal_chunk(self.store.blob_sealer, self.store.keys.ids, data, kind, blob_id).sealed)
        return self._count(size)

    def add_sealed(self, blob_type: int, blob_id: bytes, comp: int, raw_length: int, sealed: bytes) -> int:
        return self._count(len(sealed)) if self._claim(blob_id) else 0

    def _count(self, size: int) -> int:
        with self._mu:
            self.added += size
        return size

    def flush(self) -> None:
        """Nothing is stored."""

    @property
    def bytes_added(self) -> int:
        return self.added


def dry_run(
    repo: DryRunTarget,
    paths,
    *,
    selection: Selection | None = None,
    stats: BackupStats | None = None,
    listing: list | None = None,
    workers=None,
    processes=None,
    exclude_nodump: bool = False,
) -> BackupResult:
    """What backing up `paths` would store (`listing`: filled with (status, path, size) per file)."""
    t0 = time.monotonic()
    norm = normalize_paths(paths)
    repo.load_index(force=True)
    cache = FilesCache(repo.cache_dir(), norm)
    session = CountingSession(repo.blobs)
    stats = stats or BackupStats()
    changes = _changes(repo, norm, cache, stats)
    changes.listing = listing  # each file as the counts see it (backup/changes.py)
    arch = Archiver(
        session,  # type: ignore[arg-type]
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
        arch.save_tree(walk_roots(arch, norm))
    finally:
        arch.close()
        cache.discard()
    return BackupResult("", arch.stats, session.bytes_added, time.monotonic() - t0)


def _changes(repo: DryRunTarget, paths: list[str], cache: FilesCache, stats: BackupStats) -> Changes:
    """What the counts are weighed against, as a backup would: the parent snapshot (the latest
    of this host and these paths), its trees read as the walk goes; with a write-only key, the
    files cache of the previous backup; nothing without a parent."""
    host = socket.gethostname()
    parent = next((s for s in reversed(repo.snapshots()) if s.hostname == host and s.paths == paths), None)
    if parent is not None and parent.readable:
        return Changes(TreeParent(repo.trees, parent.tree), stats, repo.blobs.stored_sizes)
    if parent is not None and cache.present:
        return Changes(CacheParent(cache), stats, repo.blobs.stored_sizes)
    return Changes(None, stats, repo.blobs.stored_sizes)
