"""Reading the metadata a stat does not give: extended attributes (POSIX ACLs among them)
and Linux inode flags, as the node fields of FORMAT.md §10.4.

Never through a symlink: a regular file or folder is opened O_NOFOLLOW |
O_NONBLOCK and its flags and attributes read through that descriptor;
anything else (opening a device or a FIFO may have effects) has its
attributes read by path with follow_symlinks=False, and no flags. What cannot be
read is a warning naming the entry, never silent; the entry's content is
still backed up. Attributes beyond the bounds of format/nodemeta.py are left
out with a warning, and are not even read once the count is reached.
"""

from __future__ import annotations

import errno
import os
import stat

from ..format import nodemeta
from ..restore.fsmeta import OPEN_FLAGS, UNSUPPORTED, get_flags

# gone, or unreadable by this user: the walk or the content read reports the entry already
REPORTED_ELSEWHERE = {errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.ELOOP}


class MetadataReader:
    """Reads the extra metadata of walked entries; problems go to `warnings` as text."""

    def __init__(self, warnings: list) -> None:
        self.warnings = warnings
        self._no_flags: set[int] = set()  # devices whose file system has no inode flags

    def read(self, path: str, kind: str, st) -> dict:
        """The `xattrs` and `flags` fields for one entry (empty when it has none).

        A regular file or folder is opened once for both (cheaper than resolving its path
        twice); anything else, or where its file system has no flags, is read by path."""
        out: dict = {}
        fd = self._open(path) if kind in ("file", "dir") and st.st_dev not in self._no_flags else None
        try:
            if fd is not None and (flags := self._flags_of(fd, path, st)):
                out["flags"] = flags
            attrs = self.xattrs(path if fd is None else fd, path)
        finally:
            if fd is not None:
                os.close(fd)
        if attrs:
            out["xattrs"] = nodemeta.encode_xattrs(attrs)
        return out

    def flags(self, path: str, st) -> int:
        """The recorded inode flags of a regular file or folder (0 where there are none)."""
        if st.st_dev in self._no_flags or (fd := self._open(path)) is None:
            return 0
        try:
            return self._flags_of(fd, path, st)
        finally:
            os.close(fd)

    def _open(self, path: str) -> int | None:
        try:
            return os.open(path, OPEN_FLAGS)
        except OSError as e:
            if e.errno not in REPORTED_ELSEWHERE:
                self.warnings.append(f"{path}: cannot read file flags: {e.strerror or e}")
            return None

    def _flags_of(self, fd: int, path: str, st) -> int:
        try:
            return get_flags(fd) & nodemeta.RECORDED_FLAGS
        except OSError as e:
            if e.errno not in UNSUPPORTED:
                self.warnings.append(f"{path}: cannot read file flags: {e.strerror or e}")
            elif _same_kind(fd, st):  # not a FIFO put in its place since the walk saw it
                self._no_flags.add(st.st_dev)
            return 0

    def xattrs(self, where: int | str, path: str) -> dict[str, bytes]:
        """The extended attributes of an open entry or (never following a link) of a path,
        by name, within the bounds of nodemeta; `path` names it in warnings."""
        follow = isinstance(where, int)  # a descriptor is the entry itself
        try:
            names = os.listxattr(where, follow_symlinks=follow)
        except OSError as e:
            if e.errno not in UNSUPPORTED and e.errno not in REPORTED_ELSEWHERE:
                self.warnings.append(f"{path}: cannot list extended attributes: {e.strerror or e}")
            return {}
        if not names:
            return {}
        out: dict[str, bytes] = {}
        left_out: list[str] = []
        total = 0
        for name in sorted(names):
            raw = nodemeta.name_bytes(name)
            if raw is None or len(out) >= nodemeta.MAX_XATTRS:
                left_out.append(name)
                continue
            try:
                value = os.getxattr(where, name, follow_symlinks=follow)
            except OSError as e:
                if e.errno != errno.ENODATA:  # ENODATA: removed since it was listed
                    self.warnings.append(f"{path}: cannot read extended attribute {name}: {e.strerror or e}")
                continue
            if len(value) > nodemeta.MAX_XATTR_VALUE or total + len(raw) + len(value) > nodemeta.MAX_XATTR_TOTAL:
                left_out.append(name)
                continue
            total += len(raw) + len(value)
            out[name] = value
        if left_out:
            self.warnings.append(
                f"{path}: {len(left_out)} extended attribute(s) left out (at most {nodemeta.MAX_XATTRS} "
                f"attributes and {nodemeta.MAX_XATTR_TOTAL >> 10} KiB per entry): {_names(left_out)}"
            )
        return out


def _same_kind(fd: int, st) -> bool:
    try:
        return stat.S_IFMT(os.fstat(fd).st_mode) == stat.S_IFMT(st.st_mode)
    except OSError:
        return False


def _names(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
