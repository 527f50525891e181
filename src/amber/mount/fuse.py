"""Serving a `Mount` through libfuse: libfuse 3 by its low-level API (lowlevel.py), libfuse 2
(or `FUSE_LIBRARY_NAME=fuse`) by mfusepy's path-based ctypes bindings.

The folder is mounted read-only in the foreground, with the kernel's permission
checks (`default_permissions`) on the modes and owners the snapshots recorded, and
its page cache kept across opens (`kernel_cache`: snapshot content never changes).
libfuse's own signal handlers end the session on SIGINT, SIGTERM and SIGHUP and
unmount the folder before `serve` returns. A failure of one request is its errno
(EIO for damage, told through `warn`), never the end of the mount. One thread
answers every request (Python threads would only take turns with the interpreter
lock, measured slower); blobs are read ahead beside it (content.py). Files need no
open or release: the kernel's read names the path (fs.Mount.read), and the first
open is answered ENOSYS, after which the kernel sends no OPEN or RELEASE at all.

libfuse 3 is preferred where both are installed: with it the kernel keeps symlink
targets (`latest` is read once, not at every path through it), each listing
carries its entries' attributes (READDIRPLUS), and files are put into the kernel's
page cache before they are read (ahead.py), so reading a tree costs a read request
per ten or twenty files instead of one per file. Through mfusepy (libfuse 2, or 3 where
the low-level API cannot be bound), reading a folder costs about one request per
file, its read (strace: 1.2 requests per file of a folder read with cat).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import sys
from collections.abc import Callable

from ..errors import AmberError
from .fs import CACHE_SECONDS, Mount
from .nodeattrs import inode_number

DEV_FUSE = "/dev/fuse"
# lsattr's ioctl, _IOR('f', 1, long) and its 32-bit form; the kernel moves an int (4 bytes) for both
GETFLAGS = (0x80086601, 0x80046601)

# libfuse 3 (fuse_common.h, fuse.h): what the kernel is asked for at init, and readdir's flags
CAP_READDIRPLUS_AUTO = 1 << 14  # the kernel's heuristic of when to ask for attributes with a listing
CAP_IOCTL_DIR = 1 << 11  # ioctls on folders too (libfuse 2 and 3)
CAP_CACHE_SYMLINKS = 1 << 23  # the kernel keeps a symlink's target (`latest` is read once, not per path)
READDIR_PLUS = 1  # a listing asked with every entry's attributes ...
FILL_DIR_PLUS = 2  # ... and an entry given with them
UNKNOWN_INO = 0xFFFFFFFF  # libfuse's inode number for an entry it has not looked up ('.', '..')


def check_mountpoint(path: str) -> str:
    """The mountpoint as an absolute path; AmberError (exit 1) unless it is an empty folder
    this process may use. Nothing in it is touched."""
    where = os.path.abspath(path)
    try:
        st = os.stat(where)
    except FileNotFoundError:
        raise AmberError(f"mountpoint {path}: no such folder (create an empty folder to mount on)") from None
    except OSError as e:
        raise AmberError(f"mountpoint {path}: {e.strerror}") from None
    if not os.path.isdir(where):
        raise AmberError(f"mountpoint {path}: not a folder")
    try:
        inside = os.listdir(where)
    except OSError as e:
        raise AmberError(f"mountpoint {path}: cannot be read ({e.strerror})") from None
    if inside:
        raise AmberError(f"mountpoint {path}: not empty (amber mounts only on an empty folder, hiding nothing)")
    if os.getuid() != 0 and (st.st_uid != os.getuid() or not os.access(where, os.W_OK | os.X_OK)):
        raise AmberError(f"mountpoint {path}: not permitted (mount on an empty folder of your own)")
    return where


def load_fuse():
    """The mfusepy module, bound to libfuse; AmberError (exit 1) saying what is missing."""
    if not os.path.exists(DEV_FUSE):
        raise AmberError(
            f"FUSE is not available: {DEV_FUSE} is missing (load the fuse kernel module; "
            "in a container, pass the device /dev/fuse)"
        )
    if not os.environ.get("FUSE_LIBRARY_PATH") and not (
        ctypes.util.find_library("fuse") or ctypes.util.find_library("fuse3")
    ):
        raise AmberError("FUSE is not available: libfuse is not installed (on Debian: apt-get install fuse3)")
    chosen = {}
    given = os.environ.get("FUSE_LIBRARY_PATH") or os.environ.get("FUSE_LIBRARY_NAME")
    if not given and ctypes.util.find_library("fuse3"):  # caches symlinks, fills lookups from listings
        chosen = {"FUSE_LIBRARY_NAME": "fuse3"}
    os.environ.update(chosen)
    try:
        import mfusepy
    except ImportError:
        raise AmberError("amber mount needs the Python package mfusepy: pip install mfusepy") from None
    except (OSError, AttributeError) as e:
        raise AmberError(f"FUSE is not available: {e}") from None
    finally:
        for name in chosen:
            os.environ.pop(name, None)
    return mfusepy


def serve(
    mount: Mount, mountpoint: str, *, allow_other: bool = False, on_ready: Callable[[], None] = lambda: None
) -> None:
    """Mount and answer until unmounted (Ctrl-C, SIGTERM, or fusermount -u)."""
    fuse = load_fuse()
    if fuse.fuse_version_major == 3 and sys.platform.startswith("linux"):
        from . import libfuse3, lowlevel

        try:
            lib = libfuse3.load(getattr(fuse, "_libfuse_path", None))
        except (OSError, AttributeError):  # not the libfuse 3 it was written for: the path-based API
            lib = None
        if lib is not None:
            lowlevel.serve(lib, mount, mountpoint, allow_other=allow_other, on_ready=on_ready)
            return
    ops = _operations(fuse, mount, on_ready)
    options = {
        "foreground": True,
        "nothreads": True,  # one thread answers: Python threads only contend for the interpreter lock
        "ro": True,
        "default_permissions": True,
        "kernel_cache": True,
        "entry_timeout": CACHE_SECONDS,
        "attr_timeout": CACHE_SECONDS,
        "fsname": "amber",
        "subtype": "amber",
        "use_ino": True,  # st_ino as the mount gives it: hard links share one (nodeattrs.py inode_number)
    }
    if allow_other:
        options["allow_other"] = True
    try:
        _fuse_class(fuse)(ops, mountpoint, **options)
    except RuntimeError as e:
        # libfuse 3 returns 8 when a signal ended the session it has already unmounted
        if not (ops.started and not os.path.ismount(mountpoint)):
            raise AmberError(f"could not mount {mountpoint} (libfuse error {e})") from None
    finally:
        mount.close()
    if not ops.started:
        raise AmberError(f"could not mount {mountpoint}")


def _operations(fuse, mount: Mount, on_ready: Callable[[], None]):
    """mfusepy's Operations, answered by `mount`."""

    def answer(method):
        @functools.wraps(method)
        def run(self, *args):
            try:
                return method(self, *args)
            except OSError:
                raise
            except AmberError as e:
                mount.warn(str(e))
                raise OSError(errno.EIO, str(e)) from None
            except Exception as e:  # a request fails alone; the mount goes on
                mount.warn(f"{method.__name__} {args[0] if args else ''}: {type(e).__name__}: {e}")
                raise OSError(errno.EIO, str(e)) from None

        return run

    class Operations(fuse.Operations):
        use_ns = True
        started = False

        def init_with_config(self, conn, config):
            if conn is not None and fuse.fuse_version_major == 3:
                conn.want |= conn.capable & CAP_CACHE_SYMLINKS
                conn.want &= ~CAP_READDIRPLUS_AUTO  # every listing brings its entries' attributes
            if conn is not None:
                conn.want |= conn.capable & CAP_IOCTL_DIR  # lsattr -d of a folder reaches `ioctl`
            Operations.started = True
            on_ready()

        @answer
        def getattr(self, path, fh=None):
            return mount.getattr(path)

        @answer
        def readdir(self, path, fh):
            up = os.path.dirname(path.rstrip("/")) or "/"
            return [
                (".", {"st_mode": 0o040000, "st_ino": inode_number(path)}, 0),
                ("..", {"st_mode": 0o040000, "st_ino": inode_number(up)}, 0),
            ] + [(n, {"st_mode": m, "st_ino": i}, 0) for n, m, i in mount.readdir(path)]

        @answer
        def listing(self, path, offset):
            return mount.listing(path, offset)

        @answer
        def readlink(self, path):
            return mount.readlink(path)

        def open(self, path, flags):
            # ENOSYS tells the kernel that files need no open here: it stops sending OPEN and
            # RELEASE (two round trips per file) and keeps each file's pages across opens
            raise OSError(errno.ENOSYS, path)

        @answer
        def read(self, path, size, offset, fh):
            return mount.read(path, size, offset)

        @answer
        def ioctl(self, path, cmd, arg, fh, flags, data):
            if (cmd & 0xFFFFFFFF) not in GETFLAGS or not data:
                raise OSError(errno.ENOTTY, path)
            ctypes.memmove(data, ctypes.byref(ctypes.c_uint32(mount.flags(path))), 4)
            return 0

        @answer
        def listxattr(self, path):
            return mount.listxattr(path)

        @answer
        def getxattr(self, path, name, position=0):
            return mount.getxattr(path, name)

        def statfs(self, path):
            return {"f_bsize": 4096, "f_frsize": 4096, "f_namemax": 255}

    return Operations()


def _fuse_class(fuse):
    """mfusepy's FUSE, answering libfuse 3's listings itself: each request gets the entries
    from its offset on, and with every entry's attributes when the kernel asks for them
    (READDIRPLUS), so a folder walked and then read costs a request per few dozen entries
    instead of a lookup per entry. (libfuse gives attributes to the kernel only for entries
    given with their offset: a listing it keeps itself reaches the kernel without them.)"""

    class Fuse(fuse.FUSE):
        def readdir_fuse_3(self, path, buf, filler, offset, fip, flags):
            plus = flags & READDIR_PLUS
            entries = self.operations.listing(path.decode(self.encoding, self.errors), offset)
            st = fuse.c_stat()
            for at in range(offset, len(entries)):
                name, attrs = entries[at]
                ctypes.memset(ctypes.byref(st), 0, ctypes.sizeof(st))
                if plus:
                    fuse.set_st_attrs(st, attrs, use_ns=True)
                else:
                    st.st_mode, st.st_ino = attrs["st_mode"], attrs.get("st_ino", 0)
                if not st.st_ino:  # libfuse numbers what it looks up; an entry numbered 0 is not listed
                    st.st_ino = UNKNOWN_INO
                if filler(buf, name.encode(self.encoding, self.errors), st, at + 1, FILL_DIR_PLUS if plus else 0):
                    break
            return 0

    return Fuse
