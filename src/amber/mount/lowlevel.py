"""Serving a `Mount` through libfuse 3's low-level API (libfuse3.py's ctypes binding).

Reading a tree through FUSE costs a round trip per file: the reader blocks, the kernel
wakes this process, Python answers, the kernel wakes the reader. With the low-level API
the kernel knows files by node ids this module gives out, so a file's content can be put
into the kernel's page cache before anyone asks (`fuse_lowlevel_notify_store`, `store`):
ahead.py does so for the files a reader goes to next, whose reads are then answered by
the kernel alone. A file is stored whole, exactly its size (nothing past its end), and
only while the kernel knows its node id.

Node ids: 1 is the root; every other one is given to one path at its first lookup or
listing (READDIRPLUS counts as a lookup of each entry it carries but '.' and '..'),
counted up with every lookup and down by FORGET, and dropped at zero. Ids are never
given twice, so a store to a forgotten id reaches nothing. st_ino is nodeattrs.inode_number's
(hard links share it), not the node id. Files are never opened (the first open is
answered ENOSYS, after which the kernel sends no OPEN or RELEASE and keeps pages across
opens); folders are listed with every entry's attributes (READDIRPLUS, fs.Mount.listing),
and the kernel keeps names and attributes for CACHE_SECONDS and symlink targets. One
thread answers requests (fuse_session_loop); a request that fails replies its errno (EIO
for damage, told through `warn`) and the mount goes on. libfuse's signal handlers end
the session on SIGINT, SIGTERM and SIGHUP, and the folder is unmounted before `serve`
returns.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from ..errors import AmberError
from . import libfuse3 as ll
from .ahead import Pusher
from .fs import CACHE_SECONDS, Mount

GETFLAGS = (0x80086601, 0x80046601)  # lsattr's ioctl, _IOR('f', 1, long) and its 32-bit form
PUSH_CHUNK = 1 << 20  # bytes per store (page aligned: each but the last fills its pages)
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Nodes:
    """The node ids the kernel knows: id -> path, path -> id, and each id's lookup count."""

    def __init__(self) -> None:
        self._paths: dict[int, str] = {1: "/"}
        self._ids: dict[str, int] = {"/": 1}
        self._counts: dict[int, int] = {1: 1}
        self._sizes: dict[int, tuple[int, int]] = {}  # (size, mtime) the kernel was last told
        self._next = 2
        self._mu = threading.Lock()

    def path(self, ino: int) -> str:
        path = self._paths.get(ino)
        if path is None:  # the kernel never asks about an id it forgot: a stale handle
            raise OSError(errno.ESTALE, f"node {ino}")
        return path

    def upcoming(self, path: str) -> int:
        """The id `give(path)` would return."""
        return self._ids.get(path, self._next)

    def give(self, path: str, attrs: dict | None = None) -> int:
        """The id of `path`, counted as told to the kernel once more (with `attrs`)."""
        with self._mu:
            ino = self._ids.get(path)
            if ino is None:
                ino = self._next
                self._next += 1
                self._ids[path], self._paths[ino] = ino, path
                self._counts[ino] = 0
            self._counts[ino] += 1
            if attrs is not None:
                self._sizes[ino] = (attrs.get("st_size", 0), attrs.get("st_mtime", 0))
            return ino

    def forget(self, ino: int, n: int) -> None:
        with self._mu:
            left = self._counts.get(ino)
            if left is None or ino == 1:
                return
            if left > n:
                self._counts[ino] = left - n
                return
            del self._counts[ino]
            self._sizes.pop(ino, None)
            path = self._paths.pop(ino)
            if self._ids.get(path) == ino:
                del self._ids[path]

    def known(self, path: str) -> int | None:
        """The id the kernel knows `path` by, if it knows one."""
        return self._ids.get(path)

    def told(self, path: str, size: int, mtime: int) -> int | None:
        """The id the kernel knows `path` by, if it was told this size and mtime for it: a file
        stored ahead must be the one the kernel knows (a name above the snapshots may stand
        for another snapshot since)."""
        ino = self._ids.get(path)
        return ino if ino is not None and self._sizes.get(ino) == (size, mtime) else None

    def __len__(self) -> int:
        return len(self._paths)


def fill_stat(st: ll.c_stat, attrs: dict) -> ll.c_stat:
    """stat fields (times in nanoseconds) into a new struct stat (ctypes zeroes it): every
    field fs.Mount gives, set by name (a listing fills one per entry: no generic loop)."""
    g = attrs.get
    st.st_mode, st.st_nlink, st.st_ino = attrs["st_mode"], g("st_nlink", 1), g("st_ino", 0)
    st.st_uid, st.st_gid, st.st_rdev = g("st_uid", 0), g("st_gid", 0), g("st_rdev", 0)
    st.st_size, st.st_blocks = g("st_size", 0), g("st_blocks", 0)
    st.st_atimespec.tv_sec, st.st_atimespec.tv_nsec = divmod(int(g("st_atime", 0)), 10**9)
    st.st_mtimespec.tv_sec, st.st_mtimespec.tv_nsec = divmod(int(g("st_mtime", 0)), 10**9)
    st.st_ctimespec.tv_sec, st.st_ctimespec.tv_nsec = divmod(int(g("st_ctime", 0)), 10**9)
    return st


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _child(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


class Server:
    """The low-level operations of one mount, and its pusher."""

    def __init__(self, lib: ctypes.CDLL, mount: Mount, on_ready: Callable[[], None]) -> None:
        self.lib = lib
        self.mount = mount
        self.on_ready = on_ready
        self.nodes = Nodes()
        self.started = False
        self.session: int | None = None
        self._session_mu = threading.Lock()  # held while storing: the session is not destroyed meanwhile
        self.pusher = Pusher(mount, self.nodes.told, lambda path: self.nodes.known(path) is not None, self.store)
        self._callbacks: list = []  # kept alive while libfuse holds them
        self._reader = 0  # the process whose read is being answered
        mount.on_first_read = lambda path: self.pusher.first_read(path, self.nodes.known(path), self._reader)

    # -- the operations table ----------------------------------------------------

    def operations(self) -> ll.LowlevelOps:
        table = {
            "init": ll.INIT(self._init),
            "lookup": ll.LOOKUP(self._answer(self.lookup)),
            "forget": ll.FORGET(self.forget),
            "forget_multi": ll.FORGET_MULTI(self.forget_multi),
            "getattr": ll.GETATTR(self._answer(self.getattr)),
            "readlink": ll.READLINK(self._answer(self.readlink)),
            "open": ll.OPEN(self._answer(self.open)),
            "read": ll.READ(self._answer(self.read)),
            "statfs": ll.STATFS(self._answer(self.statfs)),
            "getxattr": ll.GETXATTR(self._answer(self.getxattr)),
            "listxattr": ll.LISTXATTR(self._answer(self.listxattr)),
            "ioctl": ll.IOCTL(self._answer(self.ioctl)),
            "readdirplus": ll.READDIRPLUS(self._answer(self.readdirplus)),
        }
        self._callbacks = list(table.values())
        return ll.LowlevelOps(**{name: ctypes.cast(cb, ctypes.c_void_p) for name, cb in table.items()})

    def _answer(self, method: Callable) -> Callable:
        """A request's handler that replies its errno when it fails: EIO for damage or any
        other failure, told through `warn`; the mount goes on."""

        @functools.wraps(method)
        def run(req: int, ino: int, *args: object) -> None:
            try:
                method(req, ino, *args)
            except OSError as e:
                self.lib.fuse_reply_err(req, e.errno or errno.EIO)
            except AmberError as e:
                self.mount.warn(str(e))
                self.lib.fuse_reply_err(req, errno.EIO)
            except Exception as e:  # a request fails alone
                self.mount.warn(f"{method.__name__} of node {ino}: {type(e).__name__}: {e}")
                self.lib.fuse_reply_err(req, errno.EIO)

        return run

    def _init(self, _userdata: int | None, conn: Any) -> None:
        c = conn.contents
        c.want &= ~(ll.CAP_AUTO_INVAL_DATA | ll.CAP_READDIRPLUS_AUTO)  # content never changes; lists carry attributes
        c.want |= c.capable & (ll.CAP_CACHE_SYMLINKS | ll.CAP_IOCTL_DIR | ll.CAP_READDIRPLUS)
        self.started = True
        try:
            self.on_ready()
        except Exception as e:
            self.mount.warn(f"mounted, but: {e}")

    # -- requests ----------------------------------------------------------------

    @staticmethod
    def _entry(attrs: dict, ino: int) -> ll.EntryParam:
        e = ll.EntryParam(ino=ino, attr_timeout=CACHE_SECONDS, entry_timeout=CACHE_SECONDS)
        fill_stat(e.attr, attrs)
        return e

    def lookup(self, req: int, parent: int, name: bytes) -> None:
        path = _child(self.nodes.path(parent), _name(name))
        attrs = self.mount.getattr(path)
        e = self._entry(attrs, self.nodes.upcoming(path))
        e.ino = self.nodes.give(path, attrs)
        if self.lib.fuse_reply_entry(req, ctypes.byref(e)) != 0:  # the kernel did not take it
            self.nodes.forget(e.ino, 1)

    def forget(self, req: int, ino: int, n: int) -> None:
        try:
            self.nodes.forget(ino, n)
        finally:
            self.lib.fuse_reply_none(req)

    def forget_multi(self, req: int, count: int, forgets: Any) -> None:
        try:
            for i in range(count):
                self.nodes.forget(forgets[i].ino, forgets[i].nlookup)
        finally:
            self.lib.fuse_reply_none(req)

    def getattr(self, req: int, ino: int, _fi: int | None) -> None:
        st = fill_stat(ll.c_stat(), self.mount.getattr(self.nodes.path(ino)))
        self.lib.fuse_reply_attr(req, ctypes.byref(st), CACHE_SECONDS)

    def readlink(self, req: int, ino: int) -> None:
        self.lib.fuse_reply_readlink(req, os.fsencode(self.mount.readlink(self.nodes.path(ino))))

    def open(self, req: int, ino: int, _fi: int | None) -> None:
        raise OSError(errno.ENOSYS, "files need no open")  # no OPEN or RELEASE from now on

    def read(self, req: int, ino: int, size: int, offset: int, _fi: int | None) -> None:
        ctx = self.lib.fuse_req_ctx(req)
        self._reader = ctx.contents.pid if ctx else 0
        data = self.mount.read(self.nodes.path(ino), size, offset)
        self.lib.fuse_reply_buf(req, data, len(data))

    def statfs(self, req: int, _ino: int) -> None:
        sv = ll.c_statvfs(f_bsize=4096, f_frsize=4096, f_namemax=255)
        self.lib.fuse_reply_statfs(req, ctypes.byref(sv))

    def _sized(self, req: int, data: bytes, size: int) -> None:
        """An xattr answer: its size when asked with size 0, ERANGE when it does not fit."""
        if size == 0:
            self.lib.fuse_reply_xattr(req, len(data))
        elif len(data) > size:
            raise OSError(errno.ERANGE, "buffer too small")
        else:
            self.lib.fuse_reply_buf(req, data, len(data))

    def getxattr(self, req: int, ino: int, name: bytes, size: int) -> None:
        self._sized(req, self.mount.getxattr(self.nodes.path(ino), _name(name)), size)

    def listxattr(self, req: int, ino: int, size: int) -> None:
        names = self.mount.listxattr(self.nodes.path(ino))
        self._sized(req, b"".join(n.encode("utf-8", "surrogateescape") + b"\0" for n in names), size)

    def ioctl(self, req: int, ino: int, cmd: int, *args: Any) -> None:
        out_size = args[-1]  # (arg, fi, flags, in_buf, in_bufsz, out_bufsz)
        if (cmd & 0xFFFFFFFF) not in GETFLAGS or out_size < 4:
            raise OSError(errno.ENOTTY, "no such ioctl")
        value = ctypes.c_uint32(self.mount.flags(self.nodes.path(ino)))
        self.lib.fuse_reply_ioctl(req, 0, ctypes.byref(value), 4)

    def readdirplus(self, req: int, ino: int, size: int, offset: int, _fi: int | None) -> None:
        """The entries from `offset` on, with their attributes, as many as fit in `size`
        bytes; each one given (but '.' and '..') counts as a lookup of its node id."""
        path = self.nodes.path(ino)
        entries = self.mount.listing(path, offset)
        size = min(size, 1 << 20)
        buf = ctypes.create_string_buffer(size)
        base, used = ctypes.addressof(buf), 0
        for at in range(max(offset, 0), len(entries)):
            name, attrs = entries[at]
            dots = at < 2  # '.' and '..': node id 0, the kernel links nothing
            child = path if dots else _child(path, name)
            e = self._entry(attrs, 0 if dots else self.nodes.upcoming(child))
            raw = name.encode("utf-8", "surrogateescape")
            n = self.lib.fuse_add_direntry_plus(req, base + used, size - used, raw, ctypes.byref(e), at + 1)
            if n > size - used:
                break
            used += n
            if not dots:
                self.nodes.give(child, attrs)
        self.lib.fuse_reply_buf(req, buf, used)

    def store(self, ino: int, data: bytes) -> bool:
        """Put a file's whole content into the kernel's page cache (ahead.py): False if the
        kernel took none of it (it forgot the node, or the session ended)."""
        vec = ll.BufVec(count=1, idx=0, off=0)
        view = memoryview(data)
        for start in range(0, len(data), PUSH_CHUNK):
            piece = bytes(view[start : start + PUSH_CHUNK]) if len(data) > PUSH_CHUNK else data
            vec.buf[0].size, vec.buf[0].flags = len(piece), 0
            vec.buf[0].mem = ctypes.cast(ctypes.c_char_p(piece), ctypes.c_void_p)
            with self._session_mu:
                if self.session is None:
                    return False
                if self.lib.fuse_lowlevel_notify_store(self.session, ino, start, ctypes.byref(vec), ll.BUF_NO_SPLICE):
                    return False  # forgotten meanwhile (ENOENT)
        return True

    # -- the session ---------------------------------------------------------------

    def run(self, mountpoint: str, options: list[str]) -> None:
        ops = self.operations()
        argv = (ctypes.c_char_p * 4)(b"amber", b"-o", ",".join(options).encode(), None)
        args = ll.FuseArgs(3, argv, 0)
        session = self.lib.fuse_session_new(ctypes.byref(args), ctypes.byref(ops), ctypes.sizeof(ops), None)
        if not session:
            raise AmberError(f"could not mount {mountpoint} (libfuse refused the options)")
        before = {s: signal.signal(s, signal.SIG_DFL) for s in SIGNALS}  # libfuse sets only default ones
        try:
            if self.lib.fuse_set_signal_handlers(session) != 0:
                raise AmberError("could not set the signal handlers that unmount")
            try:
                if self.lib.fuse_session_mount(session, os.fsencode(mountpoint)) != 0:
                    raise AmberError(f"could not mount {mountpoint}")
                self.session = session
                self.pusher.start()
                try:
                    result = self.lib.fuse_session_loop(session)
                finally:
                    self.pusher.stop()
                    with self._session_mu:
                        self.session = None  # no store from now on
                    self.lib.fuse_session_unmount(session)
                if result < 0:
                    raise AmberError(f"the mount at {mountpoint} ended on an error ({os.strerror(-result)})")
            finally:
                self.lib.fuse_remove_signal_handlers(session)
        finally:
            for s, handler in before.items():
                signal.signal(s, handler)
            self.lib.fuse_session_destroy(session)


def serve(lib: ctypes.CDLL, mount: Mount, mountpoint: str, *, allow_other: bool, on_ready: Callable[[], None]) -> None:
    """Mount and answer until unmounted (Ctrl-C, SIGTERM, SIGHUP, or fusermount3 -u)."""
    options = ["ro", "default_permissions", "fsname=amber", "subtype=amber"]
    if allow_other:
        options.append("allow_other")
    server = Server(lib, mount, on_ready)
    try:
        server.run(mountpoint, options)
    finally:
        mount.close()
