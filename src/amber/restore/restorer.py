"""The restorer: plan by pack, read each pack region once, write files in parallel.

Safety against a hostile repository: every name was checked when its tree
was decoded (no '/', '.', '..' or NUL, sorted and unique), destinations are
built only from those names under the target, folders met on the way are
checked with lstat (a symlink there is replaced, never followed), files are
opened with O_NOFOLLOW, and symlinks are created last, after every file has
been written, so no write can pass through a link the restore made.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat as st_
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import AmberError, IntegrityError, NotFound, RestoreFailed, StorageError
from ..format import layout
from ..repo.blobs import BlobStore
from ..repo.snapshots import Snapshot

MAX_SPAN = 64 << 20
_IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# O_EXCL: a file is always created new, so a hard link or symlink planted in the
# target can never make the restore write into a file outside it
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class Restorable(Protocol):
    """What a restore reads: trees, and blobs by pack."""

    blobs: BlobStore

    def load_index(self, force: bool = False) -> None: ...

    def load_tree(self, tree_id: str) -> list[dict]: ...


@dataclass
class RestoreStats:
    files: int = 0
    files_done: int = 0
    dirs: int = 0
    bytes_total: int = 0
    bytes_written: int = 0
    errors: list = field(default_factory=list)
    verified: int = 0
    current: str = ""
    started: float = field(default_factory=time.monotonic)


class _FileJob:
    __slots__ = ("path", "node", "remaining", "fd", "lock", "failed")

    def __init__(self, path: str, node: dict, blobs: int) -> None:
        self.path = path
        self.node = node
        self.remaining = blobs
        self.fd = None
        self.lock = threading.Lock()
        self.failed = False


def _selected(path: str, includes) -> str:
    """'all' if path is included whole, 'part' if it leads to an include, '' if neither."""
    if not includes:
        return "all"
    verdict = ""
    for inc in includes:
        if path == inc or path.startswith(inc + "/") or fnmatch.fnmatchcase(path, inc):
            return "all"
        if inc.startswith(path + "/") or path == "":
            verdict = "part"
    return verdict


class Restorer:
    def __init__(
        self, repo: Restorable, target: str, *, stats: RestoreStats | None = None, workers: int | None = None
    ) -> None:
        self.repo = repo
        self.store = repo.blobs
        self.target = os.path.abspath(target)
        self.stats = stats or RestoreStats()
        self.workers = workers or max(2, min(4, os.cpu_count() or 2))
        self.files: list[_FileJob] = []
        self.dirs: list[tuple[str, dict]] = []
        self.links: list[tuple[str, dict]] = []
        self.hardlinks: list[tuple[str, str]] = []
        self.specials: list[tuple[str, dict]] = []
        self._inodes: dict[tuple, str] = {}
        self.matched = False  # whether an include named something that exists
        self._mu = threading.Lock()

    # -- planning --------------------------------------------------------------

    def plan(self, tree_id: str, includes=(), rel: str = "", dest: str | None = None) -> None:
        """Make the folders of a tree (depth first, each before what it holds) and list
        what to write into them. Iterative: no depth of folders meets Python's recursion limit."""
        stack = [(iter(self.repo.load_tree(tree_id)), includes, rel, dest or self.target)]
        while stack:
            nodes, includes, rel, dest = stack[-1]
            node = next(nodes, None)
            if node is None:
                stack.pop()
                continue
            path = f"{rel}/{node['name']}"
            verdict = _selected(path, includes)
            if not verdict:
                continue
            if verdict == "all" and includes:
                self.matched = True
            out = os.path.join(dest, node["name"])
            kind = node["type"]
            if kind == "dir":
                _safe_mkdir(out)
                self.stats.dirs += 1
                self.dirs.append((out, node))
                if node.get("subtree"):
                    stack.append(
                        (iter(self.repo.load_tree(node["subtree"])), () if verdict == "all" else includes, path, out)
                    )
            elif verdict != "all":
                continue
            elif kind == "file":
                self._plan_file(out, node)
            elif kind == "symlink":
                self.links.append((out, node))
            else:
                self.specials.append((out, node))

    def _plan_file(self, out: str, node: dict) -> None:
        if node.get("links", 1) > 1 and "inode" in node:
            key = (node.get("device"), node["inode"])
            first = self._inodes.get(key)
            if first is not None:
                self.hardlinks.append((first, out))
                return
            self._inodes[key] = out
        content = node.get("content") or []
        self.stats.files += 1
        self.stats.bytes_total += node.get("size", 0)
        self.files.append(_FileJob(out, node, len(content)))

    # -- writing ---------------------------------------------------------------

    def run(self) -> None:
        by_pack: dict[bytes, list] = {}
        for job in self.files:
            content = job.node.get("content") or []
            if not content:
                self._write_whole(job, b"")
                continue
            pos = 0
            for h in content:
                try:
                    bid = bytes.fromhex(h)
                    e = self.store.lookup(bid)
                except (ValueError, IntegrityError) as err:
                    self._fail(job, f"{err}")
                    break
                by_pack.setdefault(e.pack, []).append((e.offset, bid, e, job, pos))
                pos += e.raw_length
        with ThreadPoolExecutor(self.workers, thread_name_prefix="amber-restore") as pool:
            for fut in [pool.submit(self._restore_pack, p, items) for p, items in by_pack.items()]:
                fut.result()
        for job in self.files:
            if job.fd is not None:  # a file some of whose blobs failed
                os.close(job.fd)
                job.fd = None
        for first, out in self.hardlinks:
            _replace(out)
            try:
                os.link(first, out)
            except OSError as e:
                self.stats.errors.append(f"{out}: cannot hard link: {e.strerror}")
        for out, node in self.specials:
            self._make_special(out, node)
        for out, node in self.links:
            self._make_symlink(out, node)
        for out, node in reversed(self.dirs):
            _apply_meta(out, node, None)

    def _restore_pack(self, pack_id: bytes, items: list) -> None:
        items.sort(key=lambda t: t[0])
        key = layout.pack(pack_id)
        i = 0
        while i < len(items):
            start = items[i][0]
            j = i
            while j + 1 < len(items) and items[j + 1][2].offset + items[j + 1][2].length - start <= MAX_SPAN:
                j += 1
            end = max(it[2].offset + it[2].length for it in items[i : j + 1])
            group = items[i : j + 1]
            i = j + 1
            try:
                region = self.store.storage.get(key, start, end - start)
            except (NotFound, AmberError) as err:
                for it in group:
                    self._fail(it[3], f"pack {pack_id.hex()[:16]}: {err}")
                continue
            view = memoryview(region)
            last_id, data = None, None
            for offset, bid, e, job, pos in group:
                if job.failed:
                    continue
                if bid != last_id:
                    try:
                        data = self.store.open_blob(bid, e, view[offset - start : offset - start + e.length])
                    except IntegrityError as err:
                        data = None
                        last_id = bid
                        self._fail(job, str(err))
                        continue
                    last_id = bid
                elif data is None:
                    self._fail(job, f"blob {bid.hex()[:16]} is damaged")
                    continue
                self._write_blob(job, data, pos)

    def _write_blob(self, job: _FileJob, data: bytes, pos: int) -> None:
        if job.remaining == 1 and pos == 0 and job.fd is None:
            self._write_whole(job, data)
            return
        try:
            with job.lock:
                if job.failed:
                    return
                if job.fd is None:
                    job.fd = _open_out(job.path)
                os.pwrite(job.fd, data, pos)
                job.remaining -= 1
                done = job.remaining == 0
                if done:
                    fd, job.fd = job.fd, None
            with self._mu:
                self.stats.bytes_written += len(data)
            if done:
                self._finish(job, fd)
        except OSError as e:
            self._fail(job, f"{e.strerror or e}")
            _raise_if_fatal(e)

    def _write_whole(self, job: _FileJob, data: bytes) -> None:
        try:
            fd = _open_out(job.path)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as e:
            self._fail(job, f"{e.strerror or e}")
            _raise_if_fatal(e)
            return
        with self._mu:
            self.stats.bytes_written += len(data)
        self._finish(job, fd)

    def _finish(self, job: _FileJob, fd: int) -> None:
        try:
            _apply_meta(job.path, job.node, fd)
        finally:
            os.close(fd)
        with self._mu:
            self.stats.files_done += 1
            self.stats.current = job.path

    def _fail(self, job: _FileJob, why: str) -> None:
        with job.lock:
            if job.failed:
                return
            job.failed = True
        with self._mu:
            self.stats.errors.append(f"{job.path}: {why}")

    def _make_symlink(self, out: str, node: dict) -> None:
        _replace(out)
        try:
            os.symlink(node.get("target", ""), out)
        except OSError as e:
            self.stats.errors.append(f"{out}: cannot create symlink: {e.strerror}")
            return
        if _IS_ROOT:
            try:
                os.chown(out, node.get("uid", 0), node.get("gid", 0), follow_symlinks=False)
            except OSError:
                pass
        try:
            os.utime(out, ns=(node["mtime_ns"], node["mtime_ns"]), follow_symlinks=False)
        except (OSError, KeyError):
            pass

    def _make_special(self, out: str, node: dict) -> None:
        _replace(out)
        try:
            if node["type"] == "fifo":
                os.mkfifo(out, node.get("mode", 0o600) & 0o777)
            elif _IS_ROOT:
                kind = st_.S_IFCHR if node["type"] == "chardev" else st_.S_IFBLK
                os.mknod(out, kind | (node.get("mode", 0o600) & 0o777), node.get("rdev", 0))
            else:
                self.stats.errors.append(f"{out}: device files are restored only as root")
                return
        except OSError as e:
            self.stats.errors.append(f"{out}: {e.strerror}")
            return
        _apply_meta(out, node, None)

    # -- verification ------------------------------------------------------------

    def verify(self) -> list[str]:
        bad = []

        def one(job: _FileJob):
            if job.failed:
                return None
            h = hashlib.sha256()
            try:
                with open(job.path, "rb", buffering=0) as f:
                    while True:
                        b = f.read(8 << 20)
                        if not b:
                            break
                        h.update(b)
            except OSError as e:
                return f"{job.path}: cannot read back: {e.strerror}"
            if h.hexdigest() != job.node.get("sha256"):
                return f"{job.path}: SHA-256 differs from the snapshot"
            return None

        with ThreadPoolExecutor(self.workers) as pool:
            for res in pool.map(one, self.files):
                if res:
                    bad.append(res)
                else:
                    self.stats.verified += 1
        return bad


def _open_out(path: str) -> int:
    try:
        return os.open(path, _OPEN_FLAGS, 0o600)
    except FileExistsError:
        _replace(path)  # whatever was there is unlinked, never written through
        return os.open(path, _OPEN_FLAGS, 0o600)


def _replace(path: str) -> None:
    """Remove whatever non-folder sits at path (a stale file or a symlink)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if st_.S_ISDIR(st.st_mode):
        raise StorageError(f"{path}: a folder is in the way of a file")
    os.unlink(path)


def _safe_mkdir(path: str) -> None:
    try:
        os.mkdir(path, 0o700)
        return
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not st_.S_ISDIR(st.st_mode):  # a file or a symlink: never write through it
        os.unlink(path)
        os.mkdir(path, 0o700)


def _apply_meta(path: str, node: dict, fd: int | None) -> None:
    mode = node.get("mode", 0o644) & 0o7777
    mtime = node.get("mtime_ns")
    target = fd if fd is not None else path
    try:
        if _IS_ROOT and "uid" in node:
            os.chown(target, node["uid"], node.get("gid", 0))
        os.chmod(target, mode)
        if mtime is not None:
            os.utime(target, ns=(mtime, mtime))
    except OSError:
        pass


def _raise_if_fatal(e: OSError) -> None:
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        raise StorageError(f"cannot write the restore: {e.strerror}") from None


def restore(
    repo: Restorable, snap: Snapshot, target: str, *, include=(), verify: bool = False, stats=None, workers=None
) -> RestoreStats:
    repo.load_index()
    includes = [("/" + i.strip("/")) if not i.startswith("/") else i.rstrip("/") or "/" for i in include]
    if "/" in includes:
        includes = []
    os.makedirs(target, exist_ok=True)
    r = Restorer(repo, target, stats=stats, workers=workers)
    r.plan(snap.tree, includes)
    if includes and not r.matched:
        raise NotFound(f"nothing in snapshot {snap.short_id} matches {', '.join(include)}")
    r.run()
    if verify:
        bad = r.verify()
        if bad:
            r.stats.errors.extend(bad)
    if r.stats.errors:
        raise RestoreFailed(r.stats.errors, r.stats, verify)
    return r.stats
