"""Putting entries in place: never through an entry this run did not create.

A file is written unnamed (O_TMPFILE in its folder) and linked into place
only when whole and verified; where the file system cannot, it is written
under a temporary name created new (O_CREAT | O_EXCL | O_NOFOLLOW) and
renamed. Hard links, symlinks, FIFOs and devices reach their final name by a
rename, which replaces whatever is there without following it; a hard link
only ever links to a file this run wrote, and only while that name still
holds the same file. `Placement` is the part of the `Restorer` that does
this; it keeps the run's temporaries so a failure removes them all.
"""

from __future__ import annotations

import errno
import itertools
import os
import secrets
import stat as st_
import threading

from ..errors import StorageError
from .fsmeta import set_xattrs
from .jobs import FileJob, RestoreStats

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# O_EXCL: a file is always created new, so a hard link or symlink planted in the
# target can never make the restore write into a file outside it
OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
TMPFILE_FLAGS = getattr(os, "O_TMPFILE", 0) | os.O_WRONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
TEMP_PREFIX = ".amber-restore-"  # a file being written, renamed into place when complete
SETID = 0o6000


class Placement:
    """Entries put in place under `target`, with owners (as root) and special files as asked."""

    def __init__(self, target: str, stats: RestoreStats, *, owner: bool, special: bool) -> None:
        self.target = target
        self.stats = stats
        self.owner = owner and IS_ROOT
        self.special = special
        self._mu = threading.Lock()
        self._temps: set[str] = set()  # temporaries not yet renamed into place (set.add/discard are atomic)
        self._temp_token = secrets.token_hex(8)  # unguessable per run; O_EXCL refuses anything in the way
        self._temp_seq = itertools.count()  # next() is atomic: no lock needed
        self._proc_fd: int | None = None  # /proc/self/fd, to give unnamed files a name
        self._unnamed = False

    def remove_temporaries(self, *, last: bool = True) -> None:
        """Remove every temporary not renamed into place; `last`: let go of /proc/self/fd too
        (not between the rounds of a restore, which still link files in)."""
        if last and self._proc_fd is not None:
            os.close(self._proc_fd)
            self._proc_fd = None
        temps, self._temps = self._temps, set()
        for tmp in temps:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def _can_link_unnamed(self) -> bool:
        """Whether files can be written unnamed (O_TMPFILE) and linked into place here: Linux,
        /proc mounted, and a file system that supports it. Tried once, in the target."""
        if not getattr(os, "O_TMPFILE", 0):
            return False
        try:
            self._proc_fd = os.open("/proc/self/fd", DIR_FLAGS)
        except OSError:
            return False
        probe = self._temp_name(self.target)
        try:
            fd = os.open(self.target, TMPFILE_FLAGS, 0o600)
            try:
                os.link(str(fd), probe, src_dir_fd=self._proc_fd, follow_symlinks=True)
            finally:
                os.close(fd)
            os.unlink(probe)
            self._temps.discard(probe)
            return True
        except OSError:
            return False

    def _temp_name(self, folder: str) -> str:
        path = os.path.join(folder, f"{TEMP_PREFIX}{self._temp_token}-{next(self._temp_seq)}")
        self._temps.add(path)
        return path

    def _create(self, job: FileJob) -> int:
        """A new, empty file for the job: unnamed in its folder where the file system allows
        (linked into place by `_finish`), else under a temporary name there."""
        folder = os.path.dirname(job.path)
        if self._unnamed:
            try:
                job.tmp = None
                return os.open(folder, TMPFILE_FLAGS, 0o600)
            except OSError as e:
                if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
                self._unnamed = False  # this file system cannot: named temporaries from now on
        job.tmp = self._temp_name(folder)
        return os.open(job.tmp, OPEN_FLAGS, 0o600)

    def _finish(self, job: FileJob, fd: int, written: int = 0) -> None:
        """Every blob written and verified: metadata, then the rename into place.
        `written`: bytes of the last write, counted here with the file."""
        tmp = job.tmp
        try:
            self._apply_meta(job.node, fd, job.path)
            # hard links, and files whose flags are set at the end, are checked against it later
            st = os.fstat(fd) if job.node.get("links", 1) > 1 or "flags" in job.node else None
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

    def write_whole(self, job: FileJob, data) -> None:
        """Write a file of one blob (or none) at once, and put it in place; a full disk
        raises StorageError, any other failure is the file's error."""
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
            raise_if_fatal(e)
            return
        self._finish(job, fd, len(data))

    def _link_in(self, job: FileJob, fd: int) -> bool:
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

    def _fail(self, job: FileJob, why: str) -> None:
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

    def _make_hardlink(self, first: FileJob, out: str) -> None:
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
        set_xattrs(tmp, node, out, self.warn)
        try:
            os.utime(tmp, ns=(node["mtime_ns"], node["mtime_ns"]), follow_symlinks=False)
        except (OSError, KeyError, OverflowError, ValueError):
            pass
        self._put_in_place(tmp, out, "symlink")

    def _make_special(self, out: str, node: dict) -> None:
        if node["type"] != "fifo" and not IS_ROOT:
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
        self._apply_meta(node, tmp, out)
        self._put_in_place(tmp, out, node["type"])

    def warn(self, message: str) -> None:
        """Metadata that could not be set: a warning the restore shows and counts."""
        with self._mu:
            self.stats.warnings.append(message)

    def _apply_meta(self, node: dict, where: int | str, shown: str) -> None:
        """Owner (as root, unless off), permission bits, extended attributes and mtime,
        through an open descriptor or (for a node this run just created) its name, never
        following a link; `shown`: the entry's path, for warnings. Flags come later."""
        mode = node.get("mode", 0o644) & 0o7777
        if not self.special:
            mode &= ~SETID
        mtime = node.get("mtime_ns")
        follow = isinstance(where, int)
        try:
            if self.owner and "uid" in node:
                os.chown(where, node["uid"], node.get("gid", 0), follow_symlinks=follow)
            os.chmod(where, mode)  # after chown, which clears setuid/setgid
        except (OSError, OverflowError, ValueError):
            pass
        set_xattrs(where, node, shown, self.warn)  # after chown, which clears security.capability
        try:
            if mtime is not None:
                os.utime(where, ns=(mtime, mtime), follow_symlinks=follow)
        except (OSError, OverflowError, ValueError):
            pass

    # -- verification ------------------------------------------------------------


def raise_if_fatal(e: OSError) -> None:
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        raise StorageError(f"cannot write the restore: {e.strerror}") from None
