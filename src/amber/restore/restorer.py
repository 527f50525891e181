"""The restorer: plan by pack, read each pack region once, write files in parallel.

Safety against a hostile repository: every name was checked when its tree
was decoded (no '/', '.', '..' or NUL, sorted and unique), destinations are
built only from those names under the target, folders met on the way are
checked with lstat (a symlink there is replaced, never followed), files are
created without a name (O_TMPFILE, in their folder) and linked into place
only when every blob has been written and verified — where the file system
cannot do that, under a temporary name (O_CREAT | O_EXCL | O_NOFOLLOW) then
renamed — so a failed or interrupted restore never leaves a partial file under
a final name (an unnamed file vanishes with its descriptor; temporaries are
removed after a failure). Symlinks are
created last, after every file has been written, so no write can pass through
a link the restore made; hard links only ever link to a file this run wrote.
Every entry reaches its final name by a rename, which replaces whatever was
there without following it.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import itertools
import os
import secrets
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
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_TMPFILE_FLAGS = getattr(os, "O_TMPFILE", 0) | os.O_WRONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
TEMP_PREFIX = ".amber-restore-"  # a file being written, renamed into place when complete
_SETID = 0o6000


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
    __slots__ = ("path", "node", "remaining", "fd", "tmp", "lock", "failed", "written")

    def __init__(self, path: str, node: dict, blobs: int) -> None:
        self.path = path
        self.node = node
        self.remaining = blobs
        self.fd: int | None = None
        self.tmp: str | None = None  # the temporary name it is written under
        self.lock = threading.Lock()
        self.failed = False
        self.written: tuple[int, int] | None = None  # (device, inode) once renamed into place


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
        self,
        repo: Restorable,
        target: str,
        *,
        stats: RestoreStats | None = None,
        workers: int | None = None,
        owner: bool = True,
        special: bool = True,
    ) -> None:
        """`owner`: as root, give entries the uid/gid the snapshot names; `special`: make
        device nodes and FIFOs and keep setuid/setgid bits (off: skipped and stripped)."""
        self.repo = repo
        self.owner = owner and _IS_ROOT
        self.special = special
        self.store = repo.blobs
        self.target = os.path.abspath(target)
        self.stats = stats or RestoreStats()
        self.workers = workers or max(2, min(4, os.cpu_count() or 2))
        self.files: list[_FileJob] = []
        self.dirs: list[tuple[str, dict]] = []
        self.links: list[tuple[str, dict]] = []
        self.hardlinks: list[tuple[_FileJob, str]] = []
        self.specials: list[tuple[str, dict]] = []
        self.skipped = 0  # special files left out (special=False)
        self._inodes: dict[tuple, _FileJob] = {}
        self._temps: set[str] = set()  # temporaries not yet renamed into place (set.add/discard are atomic)
        self._temp_token = secrets.token_hex(8)  # unguessable per run; O_EXCL refuses anything in the way
        self._temp_seq = itertools.count()  # next() is atomic: no lock needed
        self._proc_fd: int | None = None  # /proc/self/fd, to give unnamed files a name (see _can_link_unnamed)
        self._unnamed = False
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
                try:
                    below = self.repo.load_tree(node["subtree"])
                except IntegrityError as e:  # reported; the rest of the snapshot is still restored
                    self.stats.errors.append(f"{out}: {e}")
                    continue
                stack.append((iter(below), () if verdict == "all" else includes, path, out))
            elif verdict != "all":
                continue
            elif kind == "file":
                self._plan_file(out, node)
            elif kind == "symlink":
                self.links.append((out, node))
            elif self.special:
                self.specials.append((out, node))
            else:
                self.skipped += 1

    def _plan_file(self, out: str, node: dict) -> None:
        content = node.get("content") or []
        job = _FileJob(out, node, len(content))
        if node.get("links", 1) > 1 and "inode" in node:
            key = (node.get("device"), node["inode"])
            first = self._inodes.get(key)
            if first is not None:
                self.hardlinks.append((first, out))
                return
            self._inodes[key] = job
        self.stats.files += 1
        self.stats.bytes_total += node.get("size", 0)
        self.files.append(job)

    # -- writing ---------------------------------------------------------------

    def run(self) -> None:
        self._unnamed = self._can_link_unnamed()
        try:
            self._run()
        finally:
            self._cleanup()

    def _can_link_unnamed(self) -> bool:
        """Whether files can be written unnamed (O_TMPFILE) and linked into place here: Linux,
        /proc mounted, and a file system that supports it. Tried once, in the target."""
        if not getattr(os, "O_TMPFILE", 0):
            return False
        try:
            self._proc_fd = os.open("/proc/self/fd", _DIR_FLAGS)
        except OSError:
            return False
        probe = self._temp_name(self.target)
        try:
            fd = os.open(self.target, _TMPFILE_FLAGS, 0o600)
            try:
                os.link(str(fd), probe, src_dir_fd=self._proc_fd, follow_symlinks=True)
            finally:
                os.close(fd)
            os.unlink(probe)
            self._temps.discard(probe)
            return True
        except OSError:
            return False

    def _run(self) -> None:
        by_pack: dict[bytes, list] = {}
        for job in self.files:
            content = job.node.get("content") or []
            if not content:
                self._write_whole(job, b"")
                continue
            pos = 0
            planned = []
            for h in content:
                try:
                    bid = bytes.fromhex(h)
                    e = self.store.lookup(bid)
                except (ValueError, IntegrityError) as err:
                    self._fail(job, f"{err}")
                    break
                planned.append((e.pack, (e.offset, bid, e, job, pos)))
                pos += e.raw_length
            else:
                if pos != job.node.get("size", 0):
                    self._fail(job, f"its blobs hold {pos} bytes, the snapshot says {job.node.get('size', 0)}")
                    continue
                for pack, item in planned:
                    by_pack.setdefault(pack, []).append(item)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="amber-restore") as pool:
            for fut in [pool.submit(self._restore_pack, p, items) for p, items in by_pack.items()]:
                fut.result()
        self._cleanup()  # the temporaries of files some of whose blobs failed
        for first, out in self.hardlinks:
            self._make_hardlink(first, out)
        for out, node in self.specials:
            self._make_special(out, node)
        for out, node in self.links:
            self._make_symlink(out, node)
        for out, node in reversed(self.dirs):
            try:
                fd = os.open(out, _DIR_FLAGS)  # the folder itself, never a link put in its place
            except OSError:
                continue
            try:
                self._apply_meta(node, fd)
            finally:
                os.close(fd)

    def _cleanup(self) -> None:
        """Close what is still open and remove every temporary not renamed into place."""
        if self._proc_fd is not None:
            os.close(self._proc_fd)
            self._proc_fd = None
        for job in self.files:
            with job.lock:
                fd, job.fd = job.fd, None
            if fd is not None:
                os.close(fd)
        temps, self._temps = self._temps, set()
        for tmp in temps:
            try:
                os.unlink(tmp)
            except OSError:
                pass

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
                    job.fd = self._create(job)
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
            with job.lock:
                if job.failed:
                    return
                fd = self._create(job)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except BaseException:
                os.close(fd)
                raise
        except OSError as e:
            self._fail(job, f"{e.strerror or e}")
            _raise_if_fatal(e)
            return
        self._finish(job, fd, len(data))

    def _temp_name(self, folder: str) -> str:
        path = os.path.join(folder, f"{TEMP_PREFIX}{self._temp_token}-{next(self._temp_seq)}")
        self._temps.add(path)
        return path

    def _create(self, job: _FileJob) -> int:
        """A new, empty file for the job: unnamed in its folder where the file system allows
        (linked into place by `_finish`), else under a temporary name there."""
        folder = os.path.dirname(job.path)
        if self._unnamed:
            try:
                job.tmp = None
                return os.open(folder, _TMPFILE_FLAGS, 0o600)
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
                self._unnamed = False  # this file system cannot: named temporaries from now on
        job.tmp = self._temp_name(folder)
        return os.open(job.tmp, _OPEN_FLAGS, 0o600)

    def _finish(self, job: _FileJob, fd: int, written: int = 0) -> None:
        """Every blob written and verified: metadata, then the rename into place.
        `written`: bytes of the last write, counted here with the file."""
        tmp = job.tmp
        try:
            self._apply_meta(job.node, fd)
            st = os.fstat(fd) if job.node.get("links", 1) > 1 else None  # only hard links need it
            if tmp is None:
                with job.lock:
                    if job.failed:
                        return
                    if not self._link_in(job, fd):
                        return
        finally:
            os.close(fd)
        with job.lock:
            if job.failed:
                return
            try:
                if tmp is not None:
                    os.rename(tmp, job.path)  # replaces a file or link at the final name, never follows it
            except OSError as e:
                why = "a folder is in the way" if e.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST) else None
                job.failed = True
                with self._mu:
                    self.stats.errors.append(f"{job.path}: cannot put in place: {why or e.strerror}")
                return
            job.written = (st.st_dev, st.st_ino) if st is not None else (0, 0)
        if tmp is not None:
            self._temps.discard(tmp)
        with self._mu:
            self.stats.bytes_written += written
            self.stats.files_done += 1
            self.stats.current = job.path

    def _link_in(self, job: _FileJob, fd: int) -> bool:
        """Give an unnamed, complete file its final name. Whatever is in the way (a file or a
        link, never followed) is removed first; a folder in the way is an error."""
        for _attempt in range(2):
            try:
                # linkat(/proc/self/fd, "N", AT_FDCWD, path, AT_SYMLINK_FOLLOW): the open file itself
                os.link(str(fd), job.path, src_dir_fd=self._proc_fd, follow_symlinks=True)
                return True
            except FileExistsError:
                try:
                    if st_.S_ISDIR(os.lstat(job.path).st_mode):
                        break
                    os.unlink(job.path)  # unlink never follows a link
                except FileNotFoundError:
                    continue
            except OSError as e:
                job.failed = True
                with self._mu:
                    self.stats.errors.append(f"{job.path}: cannot put in place: {e.strerror}")
                return False
        job.failed = True
        with self._mu:
            self.stats.errors.append(f"{job.path}: cannot put in place: a folder is in the way")
        return False

    def _fail(self, job: _FileJob, why: str) -> None:
        with job.lock:
            if job.failed:
                return
            job.failed = True
        with self._mu:
            self.stats.errors.append(f"{job.path}: {why}")

    def _error(self, why: str) -> None:
        with self._mu:
            self.stats.errors.append(why)

    def _put_in_place(self, tmp: str, out: str, what: str) -> bool:
        try:
            os.rename(tmp, out)
        except OSError as e:
            why = "a folder is in the way" if e.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST) else e.strerror
            self._error(f"{out}: cannot put the {what} in place: {why}")
            return False
        self._temps.discard(tmp)
        return True

    def _make_hardlink(self, first: _FileJob, out: str) -> None:
        """Link to the group's first file, only if this run wrote it and it is still that file."""
        if first.written is None:
            self._error(f"{out}: cannot hard link: {first.path} was not restored")
            return
        try:
            st = os.lstat(first.path)
        except OSError as e:
            self._error(f"{out}: cannot hard link: {e.strerror}")
            return
        if (st.st_dev, st.st_ino) != first.written or not st_.S_ISREG(st.st_mode):
            self._error(f"{out}: cannot hard link: {first.path} changed after it was restored")
            return
        tmp = self._temp_name(os.path.dirname(out))
        try:
            os.link(first.path, tmp, follow_symlinks=False)
        except OSError as e:
            self._error(f"{out}: cannot hard link: {e.strerror}")
            return
        self._put_in_place(tmp, out, "hard link")

    def _make_symlink(self, out: str, node: dict) -> None:
        tmp = self._temp_name(os.path.dirname(out))
        try:
            os.symlink(node.get("target", ""), tmp)
        except OSError as e:
            self._error(f"{out}: cannot create symlink: {e.strerror}")
            return
        if self.owner:
            try:
                os.chown(tmp, node.get("uid", 0), node.get("gid", 0), follow_symlinks=False)
            except OSError:
                pass
        try:
            os.utime(tmp, ns=(node["mtime_ns"], node["mtime_ns"]), follow_symlinks=False)
        except (OSError, KeyError, OverflowError, ValueError):
            pass
        self._put_in_place(tmp, out, "symlink")

    def _make_special(self, out: str, node: dict) -> None:
        if node["type"] != "fifo" and not _IS_ROOT:
            self._error(f"{out}: device files are restored only as root")
            return
        tmp = self._temp_name(os.path.dirname(out))
        try:
            if node["type"] == "fifo":
                os.mkfifo(tmp, 0o600)
            else:
                kind = st_.S_IFCHR if node["type"] == "chardev" else st_.S_IFBLK
                os.mknod(tmp, kind | 0o600, node.get("rdev", 0))
        except (OSError, OverflowError, ValueError) as e:
            self._error(f"{out}: {getattr(e, 'strerror', None) or e}")
            return
        # by name: opening a device node may have effects; this name is the node just made
        self._apply_meta(node, tmp)
        self._put_in_place(tmp, out, node["type"])

    def _apply_meta(self, node: dict, where: int | str) -> None:
        """Owner (as root, unless off), permission bits and mtime, through an open
        descriptor or (for a node this run just created) its name, never following a link."""
        mode = node.get("mode", 0o644) & 0o7777
        if not self.special:
            mode &= ~_SETID
        mtime = node.get("mtime_ns")
        follow = isinstance(where, int)
        try:
            if self.owner and "uid" in node:
                os.chown(where, node["uid"], node.get("gid", 0), follow_symlinks=follow)
            os.chmod(where, mode)  # after chown, which clears setuid/setgid
            if mtime is not None:
                os.utime(where, ns=(mtime, mtime), follow_symlinks=follow)
        except (OSError, OverflowError, ValueError):
            pass

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


def _raise_if_fatal(e: OSError) -> None:
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        raise StorageError(f"cannot write the restore: {e.strerror}") from None


def restore(
    repo: Restorable,
    snap: Snapshot,
    target: str,
    *,
    include=(),
    verify: bool = False,
    stats=None,
    workers=None,
    no_owner: bool = False,
    no_special: bool = False,
) -> RestoreStats:
    """Restore a snapshot (or the `include` paths) under `target`.

    As root, entries get the uid and gid the snapshot names unless `no_owner`;
    `no_special` skips device nodes and FIFOs and strips setuid/setgid bits
    (for snapshots that are not trusted)."""
    repo.load_index()
    includes = [("/" + i.strip("/")) if not i.startswith("/") else i.rstrip("/") or "/" for i in include]
    if "/" in includes:
        includes = []
    os.makedirs(target, exist_ok=True)
    r = Restorer(repo, target, stats=stats, workers=workers, owner=not no_owner, special=not no_special)
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
