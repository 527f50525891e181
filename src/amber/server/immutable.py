"""The immutable attribute (FS_IMMUTABLE_FL, what `chattr +i` sets) on locked objects.

While it is set, nobody — root included — can write, rename, link or remove the
file until it is cleared, which needs CAP_LINUX_IMMUTABLE. The server sets it on
every locked or held object when it can, and clears it only to delete an object
whose lock has expired and that is not held. ext2/3/4, XFS, Btrfs, F2FS and
tmpfs (Linux 6.0 and later) support it; overlayfs, NFS, ZFS on Linux and FUSE
file systems mostly do not. Where it cannot be set (no capability, an
unsupported file system, not Linux) the server says so once in its log and the
`amber_immutable_supported` metric, and goes on: its own lock records still
refuse every change through the API.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x00000010
CAP_LINUX_IMMUTABLE = 9
_UNSUPPORTED = (errno.ENOTTY, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES, errno.EINVAL, errno.ENOSYS)


def has_capability() -> bool:
    """Whether this process holds CAP_LINUX_IMMUTABLE (root does, and so does a service given
    it with AmbientCapabilities): only then is the attribute tried at all."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_LINUX_IMMUTABLE & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def set_immutable(path: str, on: bool) -> bool:
    """Set or clear the attribute on `path`; False when this system cannot (see the module)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError:
        return False
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        new = flags[0] | FS_IMMUTABLE_FL if on else flags[0] & ~FS_IMMUTABLE_FL
        if new != flags[0]:
            fcntl.ioctl(fd, FS_IOC_SETFLAGS, array.array("i", [new]), True)
        return True
    except OSError as e:
        if e.errno in _UNSUPPORTED:
            return False
        raise
    finally:
        os.close(fd)


def is_immutable(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        return bool(flags[0] & FS_IMMUTABLE_FL)
    except OSError:
        return False
    finally:
        os.close(fd)
