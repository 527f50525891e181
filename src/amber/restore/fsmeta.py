"""Extended attributes and inode flags on the file system (FORMAT.md §10.4): the Linux
calls both a backup (reading) and a restore (setting) make, and the setting.

A restore sets a node's attributes (POSIX ACLs are the attributes
system.posix_acl_access and system.posix_acl_default) with its owner, mode
and times, and its flags after everything else: immutable and append-only
forbid what comes after them (writing, linking into place, setting times).
Whatever cannot be set is a warning naming the entry, counted by the restore.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat as st_
import struct
from collections.abc import Callable

from ..format import nodemeta

_LONG = struct.calcsize("l")
# _IOR('f', 1, long) and _IOW('f', 2, long); the kernel reads and writes an int through them
FS_IOC_GETFLAGS = (2 << 30) | (_LONG << 16) | (ord("f") << 8) | 1
FS_IOC_SETFLAGS = (1 << 30) | (_LONG << 16) | (ord("f") << 8) | 2
# regular files and folders only, never through a link, never blocking on a FIFO put in the way
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
# errors that say "this file system has no such thing", not "this entry's cannot be read"
UNSUPPORTED = {errno.ENOTTY, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS}
LAST = nodemeta.IMMUTABLE | nodemeta.APPEND  # need CAP_LINUX_IMMUTABLE; set last

Warn = Callable[[str], None]


def get_flags(fd: int) -> int:
    """The inode flags of an open file (FS_IOC_GETFLAGS)."""
    buf = fcntl.ioctl(fd, FS_IOC_GETFLAGS, bytes(_LONG))
    return struct.unpack_from("=I", buf)[0]


def set_flags(fd: int, flags: int) -> None:
    """Set the inode flags of an open file (FS_IOC_SETFLAGS)."""
    fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("=I", flags) + bytes(_LONG - 4))


def set_xattrs(where: int | str, node: dict, shown: str, warn: Warn) -> None:
    """Set a node's extended attributes on an open file or (not following a link) a path."""
    field = node.get("xattrs")
    if not field:
        return
    follow = isinstance(where, int)  # a descriptor is the entry itself
    for name, value in nodemeta.decode_xattrs(field).items():
        try:
            os.setxattr(where, name, value, follow_symlinks=follow)
        except OSError as e:
            warn(f"{shown}: cannot set extended attribute {name}: {e.strerror or e}")


def apply_flags(fd: int, flags: int, shown: str, warn: Warn) -> None:
    """Give an open file or folder the recorded flags of its node (bits not recorded are kept).

    Where immutable or append-only are refused (not root), the others are still set."""
    try:
        current = get_flags(fd)
    except OSError as e:
        warn(f"{shown}: cannot set file flags {nodemeta.letters(flags)}: {e.strerror or e}")
        return
    wanted = (current & ~nodemeta.RECORDED_FLAGS) | flags
    if wanted == current:
        return
    try:
        set_flags(fd, wanted)
        return
    except OSError as e:
        if e.errno != errno.EPERM or not flags & LAST or not flags & ~LAST:
            warn(f"{shown}: cannot set file flags {nodemeta.letters(flags)}: {e.strerror or e}")
            return
    try:
        set_flags(fd, wanted & ~LAST)
    except OSError as e:
        warn(f"{shown}: cannot set file flags {nodemeta.letters(flags)}: {e.strerror or e}")
        return
    warn(f"{shown}: cannot set file flags {nodemeta.letters(flags & LAST)}: not permitted (not root)")


def flags_on_path(path: str, node: dict, written: tuple[int, int] | None, warn: Warn) -> None:
    """Set a restored file's flags by its path, only while that path still holds the file
    this restore wrote (`written`: its device and inode)."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as e:
        warn(f"{path}: cannot set file flags {nodemeta.letters(node['flags'])}: {e.strerror or e}")
        return
    try:
        st = os.fstat(fd)
        if not st_.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != written:
            warn(f"{path}: file flags not set: the file changed after it was restored")
            return
        apply_flags(fd, node["flags"], path, warn)
    finally:
        os.close(fd)
