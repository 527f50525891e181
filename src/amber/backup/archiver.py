"""The archiver: walk → files cache → chunk → dedup → pack → trees → snapshot.

The walk runs on the calling thread; reading, chunking, hashing, compressing
and sealing of files run on a bounded pool of worker threads (the native
libraries release the GIL). A folder's tree is built once its files are done,
after its subfolders, so trees are stored bottom-up and the snapshot last.
"""

from __future__ import annotations

import collections
import hashlib
import os
import stat as st_
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from ..crypto.keys import MasterKeys
from ..format import tree as treefmt
from ..format.nodemeta import NODUMP
from ..format.pack import BLOB_DATA, BLOB_TREE
from ..repo.blobs import WriteSession
from ..repo.chunks import FileRead
from .anomaly import Anomalies
from .changes import Changes
from .filescache import FilesCache
from .metadata import MetadataReader
from .reader import FileReader
from .select import Selection
from .source import Names, selection_tree
from .workers import start as start_processes

BATCH_FILES = 64  # small files are read by the workers in batches ...
BATCH_BYTES = 4 << 20  # ... of at most this many files and bytes
PROCESS_AFTER_FILES = 2000  # small files read before a backup starts worker processes ...
PROCESS_AFTER_BYTES = 64 << 20  # ... or bytes: below both, starting them costs more than it saves
MAX_OPEN_DIRS = 4096  # walked folders waiting for their files before the walk waits ...
MAX_OPEN_ITEMS = 8192  # ... or entries of such folders: memory follows these, not the tree


@dataclass
class BackupStats:
    files_new: int = 0
    files_changed: int = 0
    files_unmodified: int = 0
    dirs: int = 0
    files_total: int = 0
    bytes_total: int = 0
    bytes_read: int = 0
    bytes_skipped: int = 0  # of the files not read again (unmodified): progress counts them done
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)  # metadata that could not be read or was left out
    current: str = ""
    started: float = field(default_factory=time.monotonic)

    def summary(self, bytes_added: int, duration_s: float) -> dict:
        """The figures a snapshot records and `backup --json` prints."""
        return {
            "files_new": self.files_new,
            "files_changed": self.files_changed,
            "files_unmodified": self.files_unmodified,
            "dirs": self.dirs,
            "files_total": self.files_total,
            "bytes_total": self.bytes_total,
            "bytes_read": self.bytes_read,
            "bytes_added": bytes_added,
            "errors": len(self.errors),
            "duration_s": round(duration_s, 3),
        }


@dataclass(frozen=True)
class BackupResult:
    snapshot_id: str
    stats: BackupStats
    bytes_added: int
    duration_s: float
    resumed: tuple[int, int] = (0, 0)  # (packs, bytes) an interrupted backup stored, reused (repo/adopt.py)
    anomalies: Anomalies | None = None  # measured against the parent; None without one

    def to_json(self) -> dict:
        packs, stored = self.resumed
        summary = self.stats.summary(self.bytes_added, self.duration_s)
        return {
            "snapshot_id": self.snapshot_id,
            **summary,
            "warnings": len(self.stats.warnings),
            "packs_resumed": packs,
            "bytes_resumed": stored,
            "anomalies": self.anomalies.to_json() if self.anomalies is not None else None,
        }


class _DirTask:
    """A walked folder whose tree is stored once its files are done; `hits` are the
    files cache entries of its files that were not read again."""

    __slots__ = ("path", "name", "st", "items", "hits", "node", "_seen")

    def __init__(self, path: str, name: str, st, items: list, hits: list) -> None:
        self.path, self.name, self.st, self.items, self.hits, self.node = path, name, st, items, hits, None
        self._seen = 0  # items before this one are done: `ready` runs often, and never looks at them again

    def ready(self) -> bool:
        items, i = self.items, self._seen
        n = len(items)
        while i < n:
            it = items[i]
            if type(it) is _PendingFile and (it.fut is None or not it.fut.done()):
                self._seen = i
                return False
            i += 1
        self._seen = i
        return True

    def wait(self) -> None:
        """Wait until every file of the folder is read (its batches must be submitted)."""
        for it in self.items:
            if type(it) is _PendingFile:
                it.fut.exception()


class _PendingFile:
    """A file handed to the workers; `fut.result()[i]` is its outcome. `old`: the parent's
    entry it is compared with (same path, or the file it was renamed from, then `renamed` is
    its new extension)."""

    __slots__ = ("path", "name", "node", "st", "fut", "i", "old", "renamed")

    def __init__(self, path: str, name: str, node: dict, st, old=None) -> None:
        self.path, self.name, self.node, self.st, self.fut, self.i = path, name, node, st, None, 0
        self.old, self.renamed = old, None


class _Folder:
    """One folder as the walk scans it: the files cache's entries (`cached`) and the hits
    taken from them, the parent's entries (`prev`), the names present now, and the files
    the parent did not have (`fresh`; `fresh_hits` of them were not read again)."""

    __slots__ = ("path", "cached", "hits", "prev", "present", "fresh", "fresh_hits")

    def __init__(self, path: str, cached: dict, prev: dict) -> None:
        self.path, self.cached, self.prev = path, cached, prev
        self.hits: list = []
        self.present: set[str] = set()
        self.fresh: list[_PendingFile] = []
        self.fresh_hits: list[_PendingFile] = []


class Archiver:
    """Walks the sources and stores their files and trees through one writing session."""

    def __init__(
        self,
        session: WriteSession,
        keys: MasterKeys,
        chunker: dict,
        *,
        selection: Selection | None = None,
        files_cache: FilesCache | None = None,
        stats: BackupStats | None = None,
        workers: int | None = None,
        processes: bool | None = None,
        changes: Changes | None = None,
        exclude_nodump: bool = False,
    ) -> None:
        self.store = session
        self.keys = keys
        self.chunker_config = chunker
        self.cache = files_cache or FilesCache(None)
        self.stats = stats or BackupStats()
        self.selection = selection or None  # None: no rule, the walk's fast path
        self.changes = changes or Changes(None, self.stats, lambda ids: None)
        self.changes.stats = self.stats
        self.names = Names()
        self.metadata = MetadataReader(self.stats.warnings)
        self.exclude_nodump = exclude_nodump
        # one worker per core: more threads only contend for the GIL (measured with bench/)
        self.workers = workers or max(2, min(4, os.cpu_count() or 2))
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="amber-backup")
        self.slots = threading.BoundedSemaphore(self.workers * 16)
        self._queue: collections.deque[_DirTask] = collections.deque()
        self._open_items = 0  # entries of the folders in _queue
        self._batch: list = []
        self._batch_bytes = 0
        self._racy_ns = time.time_ns() - 2_000_000_000
        self.reader = FileReader(session, keys, chunker, self.stats, self.workers)
        self.processes = processes if processes is not None else (os.cpu_count() or 1) > 1
        self.procs = None
        self._closing = False
        self._small_files = self._small_bytes = 0

    def close(self) -> None:
        self._closing = True  # results still coming back from the workers are not stored
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.procs is not None:
            self.procs.shutdown()
        self.reader.close()

    # -- per-file work (worker threads) ----------------------------------------

    def leaf_dropped(self, path: str, name: str, st) -> bool:
        """Whether the rules drop a path given to back up (globs, size limit)."""
        sel = self.selection
        if sel is None:
            return False
        too_big = sel.larger_than is not None and st_.S_ISREG(st.st_mode) and st.st_size > sel.larger_than
        return too_big or sel.excluded(path, name)

    def _meta(self, name: str, kind: str, st) -> dict:
        node = {
            "name": name,
            "type": kind,
            "mode": st.st_mode & 0o7777,
            "uid": st.st_uid,
            "gid": st.st_gid,
            "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns,
            "inode": st.st_ino,
        }
        user, group = self.names.user(st.st_uid), self.names.group(st.st_gid)
        if user is not None:
            node["user"] = user
        if group is not None:
            node["group"] = group
        return node

    def _extra(self, path: str, kind: str, st, entry=None) -> dict | None:
        """A node's `xattrs` and `flags` fields: from the files cache `entry` while the file's
        inode and ctime are those it recorded (any change to them moves the ctime), else read.
        None: the entry has the nodump flag and --exclude-nodump leaves it out."""
        if entry is not None and entry[6] is not None and entry[2] == st.st_ctime_ns and entry[3] == st.st_ino:
            extra = entry[6]
        else:
            extra = self.metadata.read(path, kind, st)
        if self.exclude_nodump and extra.get("flags", 0) & NODUMP:
            return None
        return extra

    def _nodump_dir(self, path: str, st) -> bool:
        """Whether --exclude-nodump leaves out this folder (its node reads its flags again). The
        folders on the way to a path given to back up are walked whatever their flags."""
        return self.exclude_nodump and bool(self.metadata.flags(path, st) & NODUMP)

    def _cache_entry(self, entry: tuple, node: dict, st) -> tuple:
        """A files cache entry with the node's metadata, known only if its ctime is not too recent."""
        meta = {k: node[k] for k in ("flags", "xattrs") if k in node} if st.st_ctime_ns < self._racy_ns else None
        return (*entry[:6], meta)

    def _file_node(self, path: str, name: str, st, items: list, folder: _Folder) -> None:
        """A file is read again unless its files cache entry matches (safety: the cache leaves
        out files written moments before it was made); it is counted against the parent's
        entry (backup/changes.py) once its content is known."""
        entry = folder.cached.get(name)
        extra = self._extra(path, "file", st, entry)
        if extra is None:
            return
        node = self._meta(name, "file", st)
        if extra:
            node.update(extra)
        node["size"] = st.st_size
        if st.st_nlink > 1:
            node["links"] = st.st_nlink
            node["device"] = st.st_dev
        stats = self.stats
        stats.files_total += 1
        prev = folder.prev.get(name)
        if entry is not None:
            size, mtime, ctime, ino, content, sha, known = entry
            if (
                size == st.st_size
                and mtime == st.st_mtime_ns
                and ctime == st.st_ctime_ns
                and ino == st.st_ino
                and self._all_indexed(content)
            ):
                node["content"] = content
                node["sha256"] = sha
                stats.bytes_total += size
                stats.bytes_skipped += size
                folder.hits.append((name, entry if known is not None else self._cache_entry(entry, node, st)))
                items.append(node)
                if prev is None and self.changes.active:  # counted once renames are paired
                    folder.fresh_hits.append(_PendingFile(path, name, node, st))
                else:
                    self.changes.file_done(path, node, prev, None)
                return
        rec = _PendingFile(path, name, node, st, prev)
        if prev is None and self.changes.active:
            folder.fresh.append(rec)
        items.append(rec)
        if st.st_size > BATCH_BYTES:
            self._submit([rec])
        else:
            self._batch.append(rec)
            self._batch_bytes += st.st_size
            if len(self._batch) >= BATCH_FILES or self._batch_bytes >= BATCH_BYTES:
                self.flush_batch()

    def flush_batch(self) -> None:
        """Submit the small files gathered so far (from any folders) as one job."""
        if self._batch:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            self._submit(batch)

    def _submit(self, recs: list) -> None:
        self.stats.current = recs[-1].path  # what progress shows: the file last handed to the workers
        self.slots.acquire()
        jobs = [(r.path, r.st.st_size) for r in recs]
        procs = self._process_pool(recs)
        if procs is not None:
            fut = Future()
            procs.submit(jobs).add_done_callback(lambda inner: self._store_sealed(inner, fut))
        else:
            fut = self.pool.submit(self.reader.read_files, jobs)
        fut.add_done_callback(lambda _f: self.slots.release())
        for i, r in enumerate(recs):
            r.fut, r.i = fut, i

    def _process_pool(self, recs: list):
        """The process pool for batches of small files, started once a backup is big enough."""
        if self.processes is False or recs[0].st.st_size > BATCH_BYTES:
            return None
        if self.procs is None:
            self._small_files += len(recs)
            self._small_bytes += sum(r.st.st_size for r in recs)
            if self._small_files < PROCESS_AFTER_FILES and self._small_bytes < PROCESS_AFTER_BYTES:
                return None
            try:
                self.procs = start_processes(self.keys, self.store.blob_key, self.chunker_config, self.workers)
            except (OSError, ValueError):
                self.processes = False  # no processes here (a sandbox, a frozen binary): threads do it
                return None
        return self.procs

    def _store_sealed(self, inner: Future, outer: Future) -> None:
        """Store a worker process's sealed chunks as soon as its batch is back, then
        complete `outer` (the future the batch's files wait on) with results that no
        longer hold them: sealed data never waits in memory for its folder to complete.
        A failure completes `outer` with it, and `_finish_file` raises it on the walk's thread."""
        try:
            if self._closing:
                raise RuntimeError("the backup ended before this batch was stored")
            results = inner.result()
            add_sealed = self.store.add_sealed
            for i, (ids, sha, size, chunks) in enumerate(results):
                if ids is None:  # (None, errno, strerror, None): the file could not be read
                    results[i] = OSError(sha, size)
                    continue
                new_raw = new_stored = 0
                for bid, comp, raw_length, sealed in chunks:
                    if add_sealed(BLOB_DATA, bid, comp, raw_length, sealed):
                        new_raw += raw_length
                        new_stored += len(sealed)
                # stored: () still says "from a process"
                results[i] = FileRead(ids, sha, size, (), new_raw, new_stored)
        except BaseException as e:
            outer.set_exception(e)
            return
        outer.set_result(results)

    def _all_indexed(self, content) -> bool:
        try:
            return self.store.has_all_hex(content)
        except (ValueError, TypeError):
            return False

    def _finish_file(self, rec: "_PendingFile", entries: list) -> bool:
        """Complete a read file's node (False: it could not be read); its files cache
        entry goes to `entries`."""
        path, node, st = rec.path, rec.node, rec.st
        res = rec.fut.result()[rec.i]
        if isinstance(res, OSError):
            self.stats.errors.append(f"{path}: {res.strerror or res}")
            self.stats.files_total -= 1
            return False
        ids, sha, size = res.ids, res.sha256, res.size
        if res.chunks is not None:  # from a worker process: its chunks came sealed (_store_sealed)
            self.stats.bytes_read += size
        node["content"] = ids
        node["sha256"] = sha
        node["size"] = size
        self.stats.bytes_total += size
        self.changes.file_done(path, node, rec.old, rec.renamed, (res.new_raw, res.new_stored))
        if st.st_mtime_ns < self._racy_ns and size == st.st_size:
            entries.append(
                (rec.name, self._cache_entry((size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, ids, sha), node, st))
            )
        return True

    def node_for(self, path: str, name: str, st, items: list, selection=None, folder: _Folder | None = None) -> None:
        """Append what stands for one directory entry to `items`: a node, a pending
        file, or a `_DirTask` for a folder. `folder`: the one being scanned."""
        mode = st.st_mode
        if folder is None:
            folder = _Folder("", {}, {})
        folder.present.add(name)
        if st_.S_ISREG(mode):
            self._file_node(path, name, st, items, folder)
        elif st_.S_ISDIR(mode):
            if selection is not None or not self._nodump_dir(path, st):
                items.append(self.save_dir(path, name, st, selection))
        elif st_.S_ISLNK(mode):
            node = self._meta(name, "symlink", st)
            try:
                node["target"] = os.readlink(path)
            except OSError as e:
                self.stats.errors.append(f"{path}: {e.strerror or e}")
                return
            node.update(self.metadata.read(path, "symlink", st))
            items.append(node)
        elif st_.S_ISFIFO(mode):
            items.append({**self._meta(name, "fifo", st), **self.metadata.read(path, "fifo", st)})
        elif st_.S_ISCHR(mode) or st_.S_ISBLK(mode):
            node = self._meta(name, "chardev" if st_.S_ISCHR(mode) else "blockdev", st)
            node["rdev"] = st.st_rdev
            node.update(self.metadata.read(path, node["type"], st))
            items.append(node)
        # sockets and the like are not backed up

    def save_dir(self, path: str, name: str, st, selection=None) -> "_DirTask":
        """Walk one folder (all of it, or only `selection`), submitting its files.

        The folder's tree is stored later, once its files are done (see
        `drain`), so the walk never waits for the workers: it keeps them fed.
        Subfolders are walked depth first with an explicit stack, so no depth
        of folders meets Python's recursion limit; each folder's task is
        queued after its subfolders' (post-order).
        """
        task, later = self._scan_dir(path, name, st, selection)
        stack = [(task, iter(later))]
        while True:
            task, pending = stack[-1]
            sub = next(pending, None)
            if sub is not None:
                child, later = self._scan_dir(*sub)
                stack.append((child, iter(later)))
                continue
            stack.pop()
            self._queue.append(task)  # post-order: after every subfolder's task
            self._open_items += len(task.items)
            self.drain()
            if not stack:
                return task
            stack[-1][0].items.append(task)

    def _scan_dir(self, path: str, name: str, st, selection) -> tuple["_DirTask", list]:
        """Read one folder: its task with the nodes (and pending files) of its other
        entries, and its subfolders as (path, name, stat, selection), to walk next."""
        self.stats.current = path
        self.stats.dirs += 1
        items: list = []
        later: list = []
        folder = _Folder(path, self.cache.folder(path), self.changes.folder(path))
        if selection is None:
            try:
                with os.scandir(path) as it:
                    entries = list(it)
            except OSError as e:
                self.stats.errors.append(f"{path}: {e.strerror or e}")
                entries = []
            sel = self.selection
            rule = sel.folder(path, {e.name for e in entries} if sel.tags else (), st) if sel is not None else None
            for entry in entries:
                child = entry.path
                if rule is not None and rule.drops(child, entry.name):
                    continue
                try:
                    cst = entry.stat(follow_symlinks=False)
                except OSError as e:
                    self.stats.errors.append(f"{child}: {e.strerror or e}")
                    continue
                if rule is not None and (verdict := rule.verdict(cst)) != "keep":
                    if verdict == "empty":  # a mount point under --one-file-system
                        later.append((child, entry.name, cst, {}))
                        folder.present.add(entry.name)
                    continue
                if st_.S_ISDIR(cst.st_mode):
                    if not self._nodump_dir(child, cst):
                        later.append((child, entry.name, cst, None))
                    folder.present.add(entry.name)
                else:
                    self.node_for(child, entry.name, cst, items, folder=folder)
        else:
            for cname, csel in sorted(selection.items()):
                child = os.path.join(path, cname)
                try:
                    cst = os.lstat(child)
                except OSError as e:
                    self.stats.errors.append(f"{child}: {e.strerror or e}")
                    continue
                if csel is None and self.leaf_dropped(child, cname, cst):
                    continue
                if st_.S_ISDIR(cst.st_mode):
                    if csel is not None or not self._nodump_dir(child, cst):
                        later.append((child, cname, cst, csel))
                    folder.present.add(cname)
                else:
                    self.node_for(child, cname, cst, items, folder=folder)
        self.scanned(folder)
        return _DirTask(path, name, st, items, folder.hits), later

    def scanned(self, folder: _Folder) -> None:
        """Every entry of a folder is known: what the parent had and is gone, renames paired,
        and the new files that were not read again counted."""
        self.changes.scanned(folder.path, folder.prev, folder.present, folder.fresh + folder.fresh_hits)
        for rec in folder.fresh_hits:
            self.changes.file_done(rec.path, rec.node, rec.old, rec.renamed)

    def drain(self, block: bool = False) -> None:
        """Store the trees of finished folders, oldest first; with `block`, wait for all.

        Without it, wait for the oldest folders only while more than MAX_OPEN_DIRS
        folders or MAX_OPEN_ITEMS of their entries are open, so the walk never runs
        further ahead of the workers than that."""
        q = self._queue
        if block:
            self.flush_batch()
        while q:
            task = q[0]
            if not task.ready():
                if not block and len(q) <= MAX_OPEN_DIRS and self._open_items <= MAX_OPEN_ITEMS:
                    return
                self.flush_batch()
                task.wait()
            self._open_items -= len(task.items)
            self._complete(task)
            q.popleft()

    def _complete(self, task: "_DirTask") -> None:
        """Store a folder's tree as soon as its files and subfolders are done (post-order),
        and its files cache entries."""
        nodes, entries = self.collect(task.items)
        self.cache.write_folder(task.path, task.hits + entries)
        task.items = task.hits = None
        task.node = self._dir_node(task.name, task.st, nodes)
        task.node.update(self.metadata.read(task.path, "dir", task.st))

    def collect(self, items: list) -> tuple[list[dict], list]:
        """The finished nodes of a folder's items (subfolders must be complete), and the
        files cache entries of the files read."""
        nodes: list[dict] = []
        entries: list = []
        for it in items:
            if type(it) is dict:
                nodes.append(it)
            elif type(it) is _DirTask or self._finish_file(it, entries):
                nodes.append(it.node)
        return nodes, entries

    def _dir_node(self, name: str, st, nodes: list[dict]) -> dict:
        tree_id, digest = self.save_tree(nodes)
        node = self._meta(name, "dir", st)
        node["subtree"] = tree_id
        node["digest"] = digest
        return node

    def save_tree(self, nodes: list[dict]) -> tuple[str, str]:
        """Store a folder's tree; returns (tree blob id, Merkle digest)."""
        raw = treefmt.encode(nodes)
        bid = self.keys.blob_id(raw)
        tree_id = bid.hex()
        if self.store.add(BLOB_TREE, bid, raw):
            self.changes.tree_stored(tree_id, nodes)
        return tree_id, treefmt.digest(raw)

    def save_stdin(self, stream, name: str) -> dict:
        sha = hashlib.sha256()
        ids, size = [], 0
        for c in self.reader.chunker().cut_stream(stream):
            ids.extend(self.reader.store_chunks((c.data,), sha))
            size += c.length
        now = time.time_ns()
        self.stats.files_new += 1
        self.stats.files_total += 1
        self.stats.bytes_read += size
        self.stats.bytes_total += size
        return {
            "name": name,
            "type": "file",
            "mode": 0o644,
            "uid": os.getuid(),
            "gid": os.getgid(),
            "mtime_ns": now,
            "size": size,
            "content": ids,
            "sha256": sha.hexdigest(),
        }


def walk_roots(arch: Archiver, norm: list[str]) -> list[dict]:
    """The nodes of the snapshot's root folder: the first component of every path."""
    root_sel = selection_tree(norm)
    rule = None
    if "/" in norm:  # the whole filesystem: every entry of / taken whole, under the rules for /
        root_sel = dict.fromkeys(os.listdir("/"))
        if arch.selection is not None:
            rule = arch.selection.folder("/", set(root_sel), os.lstat("/"))
    items: list = []
    folder = _Folder("/", arch.cache.folder("/"), arch.changes.folder("/"))
    for name, sel in sorted(root_sel.items()):
        path = "/" + name
        if rule is not None and rule.drops(path, name):
            continue
        st = os.lstat(path)
        if rule is not None and (verdict := rule.verdict(st)) != "keep":
            if verdict == "drop":
                continue
            sel = {}  # a mount point: the folder, not what is mounted on it
        elif sel is None and arch.leaf_dropped(path, name, st):
            continue
        arch.node_for(path, name, st, items, sel, folder)
    arch.scanned(folder)
    arch.drain(block=True)
    nodes, entries = arch.collect(items)
    arch.cache.write_folder("/", folder.hits + entries)
    return nodes
